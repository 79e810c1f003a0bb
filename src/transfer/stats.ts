// The transfer room's counters: plain numbers, bumped where things happen and
// read by whoever asks (metrics, tests, the benchmark).

export class TransferStats {
  /** Transfers served, by what was sent. */
  readonly served = { axfr: 0, ixfr: 0, ixfrAsFull: 0, ixfrUpToDate: 0 };
  /** Requests refused: class not IN, zone without transfer.allow, address not allowed, key missing or wrong (not-vouched zones count in notVouched). */
  refused = 0;
  /** Transfers refused with SERVFAIL because the zone's data is not vouched for (expired, incomplete). */
  notVouched = 0;
  /** Signed messages that failed verification (BADKEY, BADSIG, BADTIME, BADTRUNC, FORMERR). */
  tsigFailures = 0;
  /** Signed messages from outside acl.allow, every transfer.allow and every primary: REFUSED without verifying. */
  tsigStrangers = 0;
  readonly notify = {
    /** NOTIFYs we received and acted on. */
    received: 0,
    /** NOTIFYs we refused (unknown zone, not a primary, bad or missing signature). */
    refused: 0,
    /** Datagrams we sent (retries included). */
    sent: 0,
    /** Targets that acknowledged a change. */
    acked: 0,
    /** Targets given up on for a change (no answer after every retry, or an error answer). */
    failed: 0,
  };
  /** As a secondary: transfers taken, by kind. */
  readonly fetched = { axfr: 0, ixfr: 0, upToDate: 0, failed: 0 };
}
