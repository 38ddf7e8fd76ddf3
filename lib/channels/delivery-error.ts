// The one error a channel's send() rejects with: the failure already sorted at the edge into
// retryable (try the same message again later) and permanent (give up on this message), so a
// job handler decides on retries from a flag instead of reading transport-specific codes.
import { ForewarnError } from '../errors.ts';

export interface DeliveryErrorDetails {
  retryable: boolean;
  /** A few words saying why, e.g. "smtp 550 at RCPT TO" or "connection dropped". */
  reason: string;
  /** The SMTP reply code, when the server answered with one. */
  responseCode?: number | undefined;
  /** The transport's own error code, e.g. nodemailer's ECONNECTION or EENVELOPE. */
  transportCode?: string | undefined;
  /**
   * Permanent, and about the address itself (no such mailbox, a malformed address), not this
   * message: the address goes on the channel's suppression list. False unless said.
   */
  addressRejected?: boolean | undefined;
  cause?: unknown;
}

export class DeliveryError extends ForewarnError {
  readonly retryable: boolean;
  readonly reason: string;
  readonly responseCode: number | undefined;
  readonly transportCode: string | undefined;
  readonly addressRejected: boolean;

  constructor(message: string, details: DeliveryErrorDetails) {
    super(
      details.retryable ? 'FW_DELIVERY_RETRYABLE' : 'FW_DELIVERY_PERMANENT',
      message,
      details.cause === undefined ? undefined : { cause: details.cause },
    );
    this.name = 'DeliveryError';
    this.retryable = details.retryable;
    this.reason = details.reason;
    this.responseCode = details.responseCode;
    this.transportCode = details.transportCode;
    this.addressRejected = !details.retryable && details.addressRejected === true;
  }
}
