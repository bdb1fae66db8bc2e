declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}

declare module '@echogarden/kissfft-wasm' {
  const factory: (opts?: Record<string, unknown>) => Promise<unknown>;
  export default factory;
}
