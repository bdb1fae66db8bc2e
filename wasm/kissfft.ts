// KissFFT compiled to WASM (@echogarden/kissfft-wasm), instantiated from a
// WebAssembly.Module the caller already has. Workers cannot compile WASM from
// bytes at run time, so workerd passes the module its bundler imported
// (kissfft-workerd.ts) and Node compiles the same file (kissfft-node.ts):
// one code path after that.
import KissFFTFactory from '@echogarden/kissfft-wasm';

export interface KissFFT {
  readonly memory: WebAssembly.Memory;
  malloc(bytes: number): number;
  free(ptr: number): void;
  /** kiss_fftr_alloc(nfft, inverse, NULL, NULL): a real-FFT plan. */
  fftrAlloc(nfft: number, inverse: boolean): number;
  /** kiss_fftr(cfg, timedata*, freqdata*): nfft reals in, nfft/2+1 interleaved complex out. */
  fftr(cfg: number, input: number, output: number): void;
  /** kiss_fftri(cfg, freqdata*, timedata*): the unnormalised inverse. */
  fftri(cfg: number, input: number, output: number): void;
}

interface EmscriptenModule {
  _malloc(n: number): number;
  _free(p: number): void;
  _kiss_fftr_alloc(nfft: number, inverse: number, mem: number, lenmem: number): number;
  _kiss_fftr(cfg: number, i: number, o: number): void;
  _kiss_fftri(cfg: number, i: number, o: number): void;
}

type Factory = (opts: Record<string, unknown>) => Promise<EmscriptenModule>;

const cache = new WeakMap<WebAssembly.Module, Promise<KissFFT>>();

/** One instance per compiled module: every DSP object shares its heap. */
export function instantiateKissFFT(module: WebAssembly.Module): Promise<KissFFT> {
  let p = cache.get(module);
  if (!p) {
    p = create(module);
    cache.set(module, p);
  }
  return p;
}

async function create(module: WebAssembly.Module): Promise<KissFFT> {
  let memory: WebAssembly.Memory | null = null;
  // Emscripten takes its Node branch whenever `process.versions.node` exists,
  // which nodejs_compat provides in workerd; that branch reads
  // `import.meta.url`, undefined once wrangler has bundled the worker. The
  // module is handed over already compiled, so no branch needs the file system:
  // hide `process` while the factory decides where it runs.
  const restore = hideProcessInWorkerd();
  let pending: Promise<EmscriptenModule>;
  try {
    pending = startFactory();
  } finally {
    restore();
  }
  const mod = await pending;
  function startFactory(): Promise<EmscriptenModule> {
    return (KissFFTFactory as unknown as Factory)({
    instantiateWasm(imports: WebAssembly.Imports, receive: (instance: WebAssembly.Instance, module: WebAssembly.Module) => void) {
      WebAssembly.instantiate(module, imports).then((instance) => {
        memory = Object.values(instance.exports).find((e): e is WebAssembly.Memory => e instanceof WebAssembly.Memory) ?? null;
        receive(instance, module);
      });
      return {};
    },
    // Nothing to fetch: the module is already compiled.
    locateFile: (path: string) => path,
    print: () => {},
    printErr: () => {},
  });
  }
  if (!memory) throw new Error('kissfft: the WASM module exports no memory');
  const mem: WebAssembly.Memory = memory;
  return {
    memory: mem,
    malloc: (n) => {
      const p = mod._malloc(n);
      if (!p) throw new Error(`kissfft: out of memory allocating ${n} bytes`);
      return p;
    },
    free: (p) => mod._free(p),
    fftrAlloc: (nfft, inverse) => {
      const cfg = mod._kiss_fftr_alloc(nfft, inverse ? 1 : 0, 0, 0);
      if (!cfg) throw new Error(`kissfft: cannot plan a real FFT of size ${nfft} (it must be even)`);
      return cfg;
    },
    fftr: (cfg, i, o) => mod._kiss_fftr(cfg, i, o),
    fftri: (cfg, i, o) => mod._kiss_fftri(cfg, i, o),
  };
}

function hideProcessInWorkerd(): () => void {
  const inWorkerd = typeof navigator !== 'undefined' && navigator.userAgent === 'Cloudflare-Workers';
  const desc = Object.getOwnPropertyDescriptor(globalThis, 'process');
  if (!inWorkerd || !desc?.configurable) return () => {};
  Object.defineProperty(globalThis, 'process', { value: undefined, configurable: true, writable: true });
  return () => Object.defineProperty(globalThis, 'process', desc);
}
