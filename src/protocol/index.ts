export * from './transport.ts';
export * from './errors.ts';
export * from './room-code.ts';
export * from './room-messages.ts';
export * from './job-messages.ts';
