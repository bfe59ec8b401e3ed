// express5 is Express 5 installed under an alias beside Express 4 (devDependencies); its API as used by
// the tests (use, get, post, options, listen) is what @types/express describes for 4.
declare module 'express5' {
  import express from 'express';
  export default express;
}
