// Node entry (agent CLI, benchmarks, Node tests): compile the same .wasm file.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { instantiateKissFFT, type KissFFT } from './kissfft.ts';

let compiled: WebAssembly.Module | null = null;

export function loadKissFFT(): Promise<KissFFT> {
  if (!compiled) {
    const path = createRequire(import.meta.url).resolve('@echogarden/kissfft-wasm/kissfft.wasm');
    compiled = new WebAssembly.Module(readFileSync(path));
  }
  return instantiateKissFFT(compiled);
}
