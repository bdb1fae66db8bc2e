// roomtone DSP: one code base for the Durable Objects (workerd), the CLI, the
// tests and the benchmarks. Load KissFFT with wasm/kissfft-node.ts or
// wasm/kissfft-workerd.ts and hand it to the constructors.
export * from './config.ts';
export * from './notes.ts';
export { SharedSpectrum } from './spectrum.ts';
export { PitchTracker, type PitchResult } from './pitch.ts';
export { OnsetDetector } from './onset.ts';
export { DynamicsMeter, DB_FLOOR, toDb, velocityFromRmsDb, type DynamicsResult } from './dynamics.ts';
export { Decimator } from './decimator.ts';
export { AnalysisPipeline, analysisDecimation, type AnalysisFrame, type FrameCallback } from './pipeline.ts';
export { PitchDetector } from './detectors.ts';
export { analyzeSamples, analysisRate, OfflineRateError, OFFLINE_MIN_RATE, type AnalysisDocument, type AnalysisDocumentFrame, type AnalyzeOptions } from './offline.ts';
export { resample } from './resample.ts';
