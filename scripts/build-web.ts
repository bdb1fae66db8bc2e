// Builds the web page into web/dist, which the worker serves as static assets
// (wrangler.toml [assets]). Run before anything that starts the worker: npm
// start, npm test (the asset binding needs the directory to exist) and the
// deploy build. Plain TypeScript bundled by esbuild; the page imports the same
// protocol and client modules as the worker and the agent.
//
// Files are overwritten in place rather than the directory being wiped first:
// a dev server watching web/dist keeps serving while a rebuild runs.
//
//   node scripts/build-web.ts [--no-minify] [--watch]
import { build, context, type BuildOptions, type Plugin } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, watch } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const SRC = join(ROOT, 'web/src');
const PUBLIC = join(ROOT, 'web/public');
export const WEB_DIST = join(ROOT, 'web/dist');

/** Entry points, named as the pages load them (/assets/<name>.js). */
const ENTRIES = {
  home: join(SRC, 'home.ts'),
  room: join(SRC, 'room.ts'),
  identify: join(SRC, 'identify.ts'),
  upload: join(SRC, 'upload.ts'),
  // An AudioWorklet module is loaded by URL into its own global scope, so it is its own bundle.
  'capture-worklet': join(SRC, 'audio/capture-worklet.ts'),
};

/**
 * zod re-exports every locale's messages as a namespace (`z.locales`), which
 * bundlers cannot drop: about 260 KB of a minified page. The page only needs
 * the English messages zod configures by default, so the namespace is
 * replaced by one that holds English alone.
 */
const zodEnglishOnly: Plugin = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]/.test(args.importer) ? { path: join(args.resolveDir, '../locales/en.js'), namespace: 'zod-locales' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(args.path)};`,
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};

export interface BuildWebOptions {
  /** Minified by default; `--no-minify` keeps names readable when debugging (source maps are written either way). */
  minify?: boolean;
  quiet?: boolean;
}

function copyTree(from: string, to: string): number {
  let n = 0;
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    const src = join(from, name);
    const dst = join(to, name);
    if (statSync(src).isDirectory()) n += copyTree(src, dst);
    else {
      copyFileSync(src, dst);
      n++;
    }
  }
  return n;
}

/** Chunk names carry a content hash: after each build, drop the ones no page refers to any more. */
const dropStaleChunks: Plugin = {
  name: 'drop-stale-chunks',
  setup(b) {
    b.onEnd((result) => {
      if (!result.metafile) return;
      const written = new Set(Object.keys(result.metafile.outputs).map((p) => resolve(ROOT, p)));
      const chunks = join(WEB_DIST, 'assets/chunks');
      for (const name of existsSync(chunks) ? readdirSync(chunks) : []) {
        if (!written.has(join(chunks, name))) rmSync(join(chunks, name), { force: true });
      }
    });
  },
};

function buildOptions(opts: BuildWebOptions): BuildOptions {
  return {
    entryPoints: ENTRIES,
    absWorkingDir: ROOT,
    outdir: join(WEB_DIST, 'assets'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    // Browsers that have AudioWorklet, ES2022 and the Clipboard API: every current one, phones included.
    target: ['chrome100', 'firefox100', 'safari15'],
    minify: opts.minify ?? true,
    sourcemap: true,
    legalComments: 'none',
    logLevel: 'warning',
    // Pages share the protocol, client and zod: one cached chunk instead of a copy in each page.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    metafile: true,
    plugins: [zodEnglishOnly, dropStaleChunks],
  };
}

export async function buildWeb(opts: BuildWebOptions = {}): Promise<{ outdir: string; files: number }> {
  const started = performance.now();
  mkdirSync(WEB_DIST, { recursive: true });
  const copied = copyTree(PUBLIC, WEB_DIST);
  const result = await build(buildOptions(opts));
  const outputs = Object.keys(result.metafile?.outputs ?? {}).length;
  if (!opts.quiet) {
    console.log(`web: built ${outputs} bundles and copied ${copied} files into web/dist in ${Math.round(performance.now() - started)} ms`);
  }
  return { outdir: WEB_DIST, files: outputs + copied };
}

/**
 * Builds, then rebuilds on every change under web/src, web/public and the
 * shared modules the pages import (esbuild follows the import graph), for a
 * development server: reload the page to see an edit. Resolves once the first
 * build is written; `stop()` ends the watching.
 */
export async function watchWeb(opts: BuildWebOptions = {}): Promise<{ stop(): Promise<void> }> {
  await buildWeb({ ...opts, quiet: true });
  const ctx = await context(buildOptions(opts));
  await ctx.watch();
  let pending: ReturnType<typeof setTimeout> | null = null;
  const publicWatcher = watch(PUBLIC, { recursive: true }, () => {
    // Editors write a file in several steps: copy once they are done.
    if (pending) clearTimeout(pending);
    pending = setTimeout(() => copyTree(PUBLIC, WEB_DIST), 50);
  });
  if (!opts.quiet) console.log('web: watching web/src and web/public for changes');
  return {
    async stop() {
      if (pending) clearTimeout(pending);
      publicWatcher.close();
      await ctx.dispose();
    },
  };
}

if (import.meta.main) {
  const minify = !process.argv.includes('--no-minify');
  if (process.argv.includes('--watch')) await watchWeb({ minify });
  else await buildWeb({ minify });
}
