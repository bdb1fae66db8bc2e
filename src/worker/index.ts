import { app } from './app.ts';

export { TransportSession } from '../durable/transport-session.ts';
export { ClientLimiter } from '../durable/client-limiter.ts';
export { Job } from '../durable/job.ts';

export default app;
