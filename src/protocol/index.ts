export * from './transport.ts';
export * from './errors.ts';
export * from './room-code.ts';
export * from './room-messages.ts';
export * from './job-messages.ts';
export * from './catalog-messages.ts';
export * from './match-messages.ts';
