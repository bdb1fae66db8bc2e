// Error codes shared by REST bodies ({error:{code,message}}) and WebSocket
// error frames ({type:"error", code, message}). Clients switch on `code`;
// `message` is for people and never carries a token.

export const ERROR_STATUS = {
  bad_json: 400,
  bad_request: 400,
  unknown_type: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  invalid_state: 409,
  gone: 410,
  too_large: 413,
  unsupported: 415,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; issues?: string[]; retry_after_s?: number };
}

export class RoomtoneError extends Error {
  readonly code: ErrorCode;
  readonly issues?: string[];
  readonly retryAfterS?: number;
  constructor(code: ErrorCode, message: string, extra: { issues?: string[]; retryAfterS?: number } = {}) {
    super(message);
    this.name = 'RoomtoneError';
    this.code = code;
    this.issues = extra.issues;
    this.retryAfterS = extra.retryAfterS;
  }
  get status(): number {
    return ERROR_STATUS[this.code];
  }
  toBody(): ErrorBody {
    const error: ErrorBody['error'] = { code: this.code, message: this.message };
    if (this.issues?.length) error.issues = this.issues;
    if (this.retryAfterS !== undefined) error.retry_after_s = this.retryAfterS;
    return { error };
  }
}
