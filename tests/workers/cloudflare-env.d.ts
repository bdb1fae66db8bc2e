// `env` from cloudflare:test carries the worker's own bindings.
import type { Env as RoomtoneEnv } from '../../src/worker/env.ts';

declare global {
  namespace Cloudflare {
    interface Env extends RoomtoneEnv {}
  }
}
