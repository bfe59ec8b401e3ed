import { ZipFops } from './dist/index.js';
const zip = new ZipFops({ inflateCache: { maxBytes: 0 } });
const path = '/work/wt-bench/bench/.data/range/range-1024m.zip/big.txt';
const fd = await zip.open(path);
const t = process.cpuUsage();
await fd.readAt(Buffer.alloc(100), 500_000_000);
const u = process.cpuUsage(t); console.log('build cpu', (u.user + u.system) / 1000, zip.stats);
await fd.close(); await zip.close();
