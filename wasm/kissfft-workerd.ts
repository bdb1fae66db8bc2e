// workerd entry: the bundler turns the .wasm import into a compiled module.
import kissfftWasm from '@echogarden/kissfft-wasm/kissfft.wasm';
import { instantiateKissFFT, type KissFFT } from './kissfft.ts';

export function loadKissFFT(): Promise<KissFFT> {
  return instantiateKissFFT(kissfftWasm);
}
