// Starts the real worker on workerd (`wrangler dev`) as a child process, for
// end-to-end tests, benchmarks and `npm start`. A real process, so tests can
// kill it and start it again on the same persisted state.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { cpSync, existsSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { processTree } from './process-tree.ts';

export interface LocalServerOptions {
  port?: number;
  /** Directory for Durable Object storage; reuse it to restart with persisted state. */
  persistTo?: string;
  /** Extra vars (strings), e.g. shorter timeouts for tests. */
  vars?: Record<string, string>;
  /** Print the server's output (npm start). */
  inheritOutput?: boolean;
  /**
   * Run from a snapshot of the worker's sources (default): wrangler dev
   * rebuilds and restarts on every file change, which would drop every socket
   * of a test or benchmark while someone edits the tree. `false` runs the live
   * tree with reloads, as a developer wants.
   */
  snapshot?: boolean;
  startTimeoutMs?: number;
  /** Another wrangler project to run instead of roomtone (a benchmark's baseline worker); run in place, with no default vars. */
  project?: string;
  /** wrangler's log level (default warn); the secrets test reads everything with 'debug'. */
  logLevel?: 'debug' | 'info' | 'log' | 'warn' | 'error';
}

export interface LocalServer {
  url: string;
  port: number;
  persistTo: string;
  process: ChildProcess;
  /** Output so far, for diagnosing a failed start. */
  log(): string;
  stop(): Promise<void>;
  /**
   * The runtime dies at once, as in a crash: SIGKILL to wrangler and every
   * process under it (workerd included), nothing flushed. Killing only the
   * spawned process would end bin/wrangler.js's wrapper and leave the server
   * answering on its port.
   */
  crash(): Promise<void>;
}

const ROOT = resolve(import.meta.dirname, '../..');

/** Copies what the worker is built from into a fresh directory; node_modules is linked, not copied. */
export function snapshotWorkerSources(): string {
  const dir = mkdtempSync(join(tmpdir(), 'roomtone-worker-'));
  for (const entry of ['src', 'wasm', 'wrangler.toml', 'package.json', 'tsconfig.json', 'web/dist']) {
    const from = join(ROOT, entry);
    if (!existsSync(from)) continue;
    if (entry === 'web/dist') mkdirSync(join(dir, 'web'), { recursive: true });
    cpSync(from, join(dir, entry), { recursive: true, filter: (f) => !f.endsWith('.test.ts') });
  }
  if (!existsSync(join(dir, 'web/dist'))) mkdirSync(join(dir, 'web/dist'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/**
 * `pickPort` chooses every port the caller did not give: the server's own
 * unless `opts.port` is set, and always wrangler's inspector port (tests give
 * one that hands out a taken port first).
 */
export async function startLocalServer(opts: LocalServerOptions = {}, pickPort: () => Promise<number> = freePort): Promise<LocalServer> {
  // freePort() only finds a port free now; another process may take it before
  // wrangler binds it. A port of our own choosing is chosen again then. The
  // inspector port is always ours: a restart on a given port (the fault tests)
  // once failed in CI because its fresh inspector port had been taken, which
  // wrangler reports as `socket "direct:1:default"`, not as the given port.
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await pickPort());
    try {
      return await startOnce(opts, port, await pickPort());
    } catch (e) {
      if (attempt >= 3 || !(e instanceof PortTakenError)) throw e;
      if (opts.port !== undefined && e.takenPort === opts.port) throw e;
    }
  }
}

class PortTakenError extends Error {
  /** The server port when wrangler named it as the one in use; null when it was another of ours (the inspector's). */
  readonly takenPort: number | null;
  constructor(message: string, takenPort: number | null) {
    super(message);
    this.takenPort = takenPort;
  }
}

async function startOnce(opts: LocalServerOptions, port: number, inspectorPort: number): Promise<LocalServer> {
  const persistTo = opts.persistTo ?? mkdtempSync(join(tmpdir(), 'roomtone-state-'));
  // Every test client comes from 127.0.0.1, one client to the per-client limits: lift them unless a test sets its own.
  const vars = opts.project ? { ...opts.vars } : { ADMIN_TOKEN: 'test-admin-token', ROOMS_PER_MIN: '100000', JOIN_FAILURES_PER_MIN: '100000', CONNECTIONS_PER_CLIENT: '100000', ...opts.vars };
  const args = [
    join(ROOT, 'node_modules/wrangler/bin/wrangler.js'),
    'dev',
    '--ip', '127.0.0.1',
    '--port', String(port),
    '--persist-to', persistTo,
    '--inspector-port', String(inspectorPort),
    '--show-interactive-dev-session=false',
    '--log-level', opts.logLevel ?? 'warn',
  ];
  for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}:${v}`);
  const cwd = opts.project ?? (opts.snapshot === false ? ROOT : snapshotWorkerSources());
  const child = spawn(process.execPath, args, {
    cwd,
    // No internet here, and nothing should need it: skip the Request.cf download.
    // wrangler dev's local observability collector and Durable Object explorer
    // are developer tools, not part of what is deployed: the collector streams
    // a tail of every invocation (each hibernated WebSocket message among
    // them) into another worker, which measured 2.2× the runtime's CPU per
    // message. Off, so tests, benchmarks and npm start run the service alone.
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: 'false',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      CI: 'true',
      NO_COLOR: '1',
      X_LOCAL_OBSERVABILITY: 'false',
      X_LOCAL_EXPLORER: 'false',
    },
    stdio: ['ignore', opts.inheritOutput ? 'inherit' : 'pipe', opts.inheritOutput ? 'inherit' : 'pipe'],
    detached: false,
  });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  let exited = false;
  const exit = new Promise<void>((res) => child.once('exit', () => ((exited = true), res())));
  // bin/wrangler.js runs wrangler in a child of its own and passes SIGTERM on;
  // a SIGKILL would end only the wrapper and leave wrangler and workerd running.
  const killTree = () => {
    for (const { pid } of processTree(child.pid!)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  };
  // If this process ends first (a test runner tearing down, a crash), the server goes with it.
  const onExit = () => exited || killTree();
  process.once('exit', onExit);
  void exit.then(() => process.off('exit', onExit));
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    // A wrangler that has not exited by then is killed with everything under it, not just the wrapper.
    const force = setTimeout(killTree, 5000);
    await exit;
    clearTimeout(force);
  };
  for (;;) {
    if (/Address already in use|EADDRINUSE/.test(output)) {
      await stop();
      const serverPortTaken = output.includes(`:${port})`);
      throw new PortTakenError(`wrangler dev could not bind ${serverPortTaken ? 'its port' : 'a port'}:\n${output.slice(-4000)}`, serverPortTaken ? port : null);
    }
    if (exited) throw new Error(`wrangler dev exited during start:\n${output.slice(-4000)}`);
    try {
      const res = await fetch(`${url}/api/v1/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev did not answer within the start timeout:\n${output.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  return {
    url,
    port,
    persistTo,
    process: child,
    log: () => output,
    stop,
    crash: async () => {
      if (exited) return;
      killTree();
      await exit;
    },
  };
}
