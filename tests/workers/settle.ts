import { afterAll } from 'vitest';

// Sockets closed at the end of a test file are answered by the objects' close
// handlers (lease releases, final saves) after the last test returns. Give them
// a moment inside the file's environment: work still running when it is torn
// down fails the whole run ("Closing rpc while … was pending").
afterAll(() => new Promise((r) => setTimeout(r, 300)));
