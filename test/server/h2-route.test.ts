/**
 * routeH2c: one cleartext connection to an HTTP/1.1 or an h2c server by its first bytes, in-process
 * on 127.0.0.1 with a net.Server in front, bytes written split as a network may deliver them.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect as h2connect, createServer as createH2cServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { H2_PREFACE, routeH2c } from '../../src/server/h2.js';

const answer = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void => {
  res.end(`${req.method ?? '-'} ${req.url ?? '-'} HTTP/${req.httpVersion}`);
};
const http1 = createServer(answer);
const h2c = createH2cServer(answer);
const sockets = new Set<Socket>();
const front = createNetServer((socket) => {
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
  routeH2c(socket, { http1, h2c }, 300);
});
let port = 0;
before(async () => {
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  port = (front.address() as AddressInfo).port;
});
after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => front.close(() => resolve()));
});

/** Writes `parts` one by one, 20 ms apart, and resolves with everything the server sent until it closed or `untilMs` passed. */
function exchange(parts: readonly (string | Buffer)[], untilMs = 1000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    }, untilMs);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    });
    let i = 0;
    const next = (): void => {
      if (i < parts.length) sock.write(parts[i++]!, () => setTimeout(next, 20));
    };
    sock.once('connect', next);
  });
}

describe('routeH2c', () => {
  it('hands a connection whose preface arrives in pieces to the h2c server, which sees all of it', async () => {
    // The server's first frame is its SETTINGS (type 4 at byte 3), proof the preface reached nghttp2 whole.
    const got = await exchange([H2_PREFACE.subarray(0, 1), H2_PREFACE.subarray(1, 5), H2_PREFACE.subarray(5, 20), H2_PREFACE.subarray(20)], 300);
    assert.ok(got.text.length >= 9, `the h2c server answered: ${JSON.stringify(got.text)}`);
    assert.equal(got.text.charCodeAt(3), 4, 'a SETTINGS frame first');
    assert.doesNotMatch(got.text, /^HTTP\/1\.1/);
  });

  it('hands HTTP/1.1 to the HTTP/1.1 server, also when it starts like the preface (P…) and arrives byte by byte', async () => {
    const put = await exchange(['P', 'U', 'T /x HTTP/1.1\r\nHost: a\r\ncontent-length: 0\r\nconnection: close\r\n\r\n']);
    assert.match(put.text, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nPUT \/x HTTP\/1\.1$/);
    const pri = await exchange(['PRI', ' /y HTTP/1.1\r\nHost: a\r\nconnection: close\r\n\r\n']);
    assert.match(pri.text, /^HTTP\/1\.1 /, 'a near-preface goes to HTTP/1.1, which decides');
    const get = await exchange(['GET /z HTTP/1.1\r\nHost: a\r\nconnection: close\r\n\r\n']);
    assert.match(get.text, /GET \/z HTTP\/1\.1$/);
  });

  it('serves a node:http2 client with prior knowledge end to end', async () => {
    const session = h2connect(`http://127.0.0.1:${port}`);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ':path': '/h2' });
        let text = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => (text += c));
        req.on('end', () => resolve(text));
        req.on('error', reject);
        req.end();
      });
      assert.equal(body, 'GET /h2 HTTP/2.0');
    } finally {
      session.close();
    }
  });

  it('destroys a connection that ends before its bytes decide, and gives a silent one to HTTP/1.1 after the timeout', async () => {
    const ended = await new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1', () => sock.end('PRI * HTTP/2'));
      sock.on('error', () => undefined);
      sock.on('data', () => resolve(false));
      sock.on('close', () => resolve(true));
    });
    assert.ok(ended, 'closed, with no answer');
    // After 300 ms of silence the HTTP/1.1 server owns the socket: a request sent then is answered.
    const late = await new Promise<string>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1');
      let text = '';
      sock.on('data', (c: Buffer) => (text += c.toString('latin1')));
      sock.on('error', reject);
      sock.on('close', () => resolve(text));
      setTimeout(() => sock.write('GET /late HTTP/1.1\r\nHost: a\r\nconnection: close\r\n\r\n'), 500);
    });
    assert.match(late, /GET \/late HTTP\/1\.1$/);
  });
});
