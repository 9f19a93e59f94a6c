import pino, { type DestinationStream, type Logger } from 'pino';

/** Paths pino blanks out wherever they appear in a log line: keys never reach a log. */
const REDACT = [
  'apiKey',
  '*.apiKey',
  '*.*.apiKey',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'secretAccessKey',
  '*.secretAccessKey',
  '*.*.secretAccessKey',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'rendermill' },
      redact: { paths: REDACT, censor: '[redacted]' },
    },
    destination,
  );
}
