import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { negotiateEncoding } from '../../src/cache/http.js';

const BOTH = ['br', 'gzip'] as const;
const GZIP = ['gzip'] as const;

describe('negotiateEncoding (RFC 9110 §12.5.3)', () => {
  const table: [string, string | undefined, readonly string[], string | null][] = [
    ['no header: identity', undefined, BOTH, 'identity'],
    ['empty header: identity only', '', BOTH, 'identity'],
    ['only OWS and commas: identity only', ' , ,', BOTH, 'identity'],
    ['gzip', 'gzip', BOTH, 'gzip'],
    ['server order breaks ties', 'gzip, br', BOTH, 'br'],
    ['server order breaks ties, the other way', 'br, gzip', ['gzip', 'br'], 'gzip'],
    ['browser default', 'gzip, deflate, br, zstd', BOTH, 'br'],
    ['nothing compressed available', 'gzip, br', [], 'identity'],
    ['unknown coding only', 'compress', BOTH, 'identity'],

    // q-values
    ['higher q wins over server order', 'br;q=0.5, gzip;q=0.8', BOTH, 'gzip'],
    ['q with three decimals', 'br;q=0.001, gzip;q=0.002', BOTH, 'gzip'],
    ['decimals compare as decimals', 'br;q=0.5, gzip;q=0.45', BOTH, 'br'],
    ['decimals compare as decimals, the other way', 'br;q=0.09, gzip;q=0.1', BOTH, 'gzip'],
    ['q=1.000', 'br;q=0.999, gzip;q=1.000', BOTH, 'gzip'],
    ['OWS around ; and =', 'br ; q=0.5 ,\tgzip ;Q=0.9', BOTH, 'gzip'],
    ['Q= is case-insensitive', 'br;Q=0.1, gzip', BOTH, 'gzip'],
    ['unknown parameter ignored', 'br;level=9, gzip;q=0.5', BOTH, 'br'],

    // refusals
    ['gzip;q=0 refuses gzip', 'gzip;q=0', GZIP, 'identity'],
    ['gzip;q=0.000 refuses gzip', 'gzip;q=0.000, br', GZIP, 'identity'],
    ['gzip;q=0 with br acceptable', 'gzip;q=0, br', BOTH, 'br'],
    ['gzip;q=0 and identity;q=0', 'gzip;q=0, identity;q=0', GZIP, null],

    // identity
    ['identity;q=0 with gzip', 'gzip, identity;q=0', GZIP, 'gzip'],
    ['identity;q=0 and nothing else', 'identity;q=0', GZIP, null],
    ['identity;q=0 and nothing available', 'gzip, identity;q=0', [], null],
    ['identity preferred by q', 'gzip;q=0.5, identity', GZIP, 'identity'],
    ['identity and gzip tie: compressed wins', 'gzip, identity', GZIP, 'gzip'],
    ['unlisted identity ranks below any listed coding', 'gzip;q=0.001', GZIP, 'gzip'],
    ['identity in available is identity', 'identity;q=0', ['identity'], null],
    ['identity in available does not outrank a compressed coding', 'identity, gzip', ['identity', 'gzip'], 'gzip'],

    // *
    ['* covers unlisted codings', '*', BOTH, 'br'],
    ['* covers unlisted codings, explicit ones still count', 'gzip;q=0.9, *;q=0.5', BOTH, 'gzip'],
    ['* covers identity too', 'gzip;q=0.5, *', GZIP, 'identity'],
    ['* with gzip refused', '*, gzip;q=0', GZIP, 'identity'],
    ['*;q=0 refuses identity and unlisted codings', '*;q=0', BOTH, null],
    ['*;q=0 with gzip listed', 'gzip, *;q=0', BOTH, 'gzip'],
    ['*;q=0 but identity listed', 'identity, *;q=0', BOTH, 'identity'],
    ['*;q=0 but identity listed with a low q', 'identity;q=0.1, *;q=0, br;q=0.2', BOTH, 'br'],

    // names
    ['x-gzip is gzip', 'x-gzip', GZIP, 'gzip'],
    ['x-gzip;q=0 refuses gzip', 'x-gzip;q=0, *', GZIP, 'identity'],
    ['an x-gzip offer matches gzip', 'gzip', ['x-gzip'], 'x-gzip'],
    ['GZIP is gzip', 'GZIP', GZIP, 'gzip'],
    ['Br is br', 'Br;q=0.5', ['BR'], 'BR'],
    ['IDENTITY;Q=0', 'gzip;q=0, IDENTITY;Q=0', GZIP, null],
    ['whitespace everywhere', ' \tgzip\t;\tq=0.7 , br ; q = 0.8 ', BOTH, 'br'],
    ['first of a duplicate wins', 'gzip;q=0, gzip', GZIP, 'identity'],

    // invalid elements are ignored
    ['q above 1 ignored', 'gzip;q=1.1', GZIP, 'identity'],
    ['q with four decimals ignored', 'gzip;q=0.0001', GZIP, 'identity'],
    ['q=1.5 ignored, br kept', 'gzip;q=1.5, br;q=0.1', BOTH, 'br'],
    ['negative q ignored', 'gzip;q=-1', GZIP, 'identity'],
    ['empty q ignored', 'gzip;q=', GZIP, 'identity'],
    ['two q parameters ignored', 'gzip;q=0.5;q=0.6', GZIP, 'identity'],
    ['invalid identity;q ignored: identity stays acceptable', 'identity;q=x', [], 'identity'],
    ['an invalid refusal does not hide *', '*;q=0, gzip;q=zero', GZIP, null],
    ['a quoted coding is not the coding', '"gzip", br;q=0.1', BOTH, 'br'],
    ['a bare parameter ignored', 'gzip;q', GZIP, 'identity'],
  ];
  for (const [name, header, available, expected] of table) {
    it(`${name}: ${JSON.stringify(header)} of ${JSON.stringify(available)}`, () => {
      assert.equal(negotiateEncoding(header, available), expected);
    });
  }
});
