// Options for the agent's WebSockets that carry PCM (analysis sources, match
// streams). `ws` offers permessage-deflate unless told not to; float and
// 16-bit samples barely compress, so with it both ends would deflate and
// inflate every frame for nothing: the local runtime spent 1.2x the CPU per
// second of matched audio with it (bench/RESULTS.md, Identification).
import type { ClientOptions } from 'ws';

export const PCM_SOCKET: ClientOptions = { perMessageDeflate: false };
