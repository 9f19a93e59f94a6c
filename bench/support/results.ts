import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** The machine a bench ran on, one line for the reports. */
export function machineLine(): string {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

/** The machine a bench ran on, for its JSON. */
export function machineFacts() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim(),
    totalMemBytes: os.totalmem(),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

/**
 * Writes a run's JSON as `bench/results/<name>-<date>.json` (with the date, commit and machine
 * first) and its markdown as `<name>-latest.md`; returns the JSON's path, relative.
 */
export async function writeResults(
  name: string,
  run: { date: string; commit: string },
  body: Record<string, unknown>,
  markdown: string,
): Promise<string> {
  const dir = path.resolve('bench/results');
  await mkdir(dir, { recursive: true });
  const jsonFile = path.join(dir, `${name}-${run.date.replace(/[:.]/g, '-')}.json`);
  const json = { date: run.date, commit: run.commit, machine: machineFacts(), ...body };
  await writeFile(jsonFile, JSON.stringify(json, null, 2) + '\n');
  await writeFile(path.join(dir, `${name}-latest.md`), markdown);
  return path.relative(process.cwd(), jsonFile);
}

/** A number as the reports print it: thousands separated, `digits` decimals, `—` for none. */
export const formatNumber = (value: number, digits: number) =>
  Number.isFinite(value)
    ? value.toLocaleString('en-US', {
        minimumFractionDigits: digits,
        maximumFractionDigits: digits,
      })
    : '—';

/** A Markdown table: the header row, its rule, and one row per `rows` entry. */
export function markdownRows(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** CPU seconds by process role, on one line: `api 1.23 s, worker 1 4.56 s`. */
export const cpuLine = (cpu: Record<string, number>) =>
  Object.entries(cpu)
    .map(([role, seconds]) => `${role} ${seconds.toFixed(2)} s`)
    .join(', ');
