import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Every relative link in the project's markdown must lead somewhere: the file (or folder)
// must exist, and a `#anchor` must name a heading of the target file.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function markdownFilesUnder(folder: string): string[] {
  if (!existsSync(folder)) return [];
  return readdirSync(folder).flatMap((name) => {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) return markdownFilesUnder(path);
    return name.endsWith('.md') ? [path] : [];
  });
}

const DOCUMENTS = [
  join(ROOT, 'README.md'),
  ...markdownFilesUnder(join(ROOT, 'docs')).sort(),
  join(ROOT, 'bench/README.md'),
  join(ROOT, 'infra/simulator/README.md'),
];

/** The lines of a markdown file that are prose: fenced code blocks are blanked out. */
function proseLines(markdown: string): string[] {
  let fence: string | undefined;
  return markdown.split('\n').map((line) => {
    const marker = /^\s{0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence !== undefined) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      return '';
    }
    if (marker) {
      fence = marker;
      return '';
    }
    return line;
  });
}

/** A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens. */
function githubSlug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link or image keeps its text
    .replace(/<[^>]+>/g, '') // inline HTML
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a file's headings, with GitHub's `-1`, `-2` … for repeated ones. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseLines(markdown)) {
    const heading = /^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const slug = githubSlug(heading);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

interface Link {
  line: number;
  target: string;
}

/** Relative links, `[text](path)`, `[text](path#anchor)`, `[text](#anchor)` and images, outside code. */
function relativeLinksOf(markdown: string): Link[] {
  const links: Link[] = [];
  proseLines(markdown).forEach((text, index) => {
    const prose = text.replace(/(`+)[\s\S]*?\1/g, ''); // inline code spans
    for (const match of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const target = match[1] ?? '';
      if (/^(https?:|mailto:)/i.test(target)) continue;
      links.push({ line: index + 1, target });
    }
  });
  return links;
}

/** What is wrong with a link from `fromFile`, or undefined when it resolves. */
function brokenLink(fromFile: string, target: string): string | undefined {
  const hash = target.indexOf('#');
  const pathPart = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
  const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const file = pathPart === '' ? fromFile : resolve(dirname(fromFile), pathPart);
  if (!existsSync(file)) return `${relative(ROOT, file)} does not exist`;
  if (anchor === undefined) return undefined;
  if (statSync(file).isDirectory() || !file.endsWith('.md')) {
    return `#${anchor}: ${relative(ROOT, file)} is not a markdown file`;
  }
  if (!anchorsOf(readFileSync(file, 'utf8')).has(anchor)) {
    return `#${anchor}: ${relative(ROOT, file)} has no such heading`;
  }
  return undefined;
}

describe('documentation links', () => {
  it('reads the README, docs/, the bench and the simulator READMEs', () => {
    for (const file of DOCUMENTS) expect(existsSync(file), relative(ROOT, file)).toBe(true);
    expect(DOCUMENTS.length).toBeGreaterThan(4);
  });

  it.each(DOCUMENTS.map((file) => [relative(ROOT, file), file]))(
    '%s: every relative link resolves',
    (_name, file) => {
      const problems = relativeLinksOf(readFileSync(file, 'utf8')).flatMap(({ line, target }) => {
        const problem = brokenLink(file, target);
        return problem ? [`line ${line}: (${target}): ${problem}`] : [];
      });
      expect(problems).toEqual([]);
    },
  );
});

describe('the link checker itself', () => {
  it('makes GitHub-style anchors', () => {
    expect(githubSlug('`npm run bench:rate` — the rate-limit benchmark')).toBe(
      'npm-run-benchrate--the-rate-limit-benchmark',
    );
    expect(githubSlug('The result cache: paying once per image')).toBe(
      'the-result-cache-paying-once-per-image',
    );
    expect(githubSlug('`POST /v1/batches` → `202`')).toBe('post-v1batches--202');
    expect(githubSlug('Bull Board: `/admin/queues`')).toBe('bull-board-adminqueues');
    expect(githubSlug('The [guard](webhooks.md): public hosts only')).toBe(
      'the-guard-public-hosts-only',
    );
    expect(githubSlug('RENDERMILL_TIER')).toBe('rendermill_tier');
  });

  it('numbers repeated headings and skips code blocks', () => {
    const markdown = ['# A', '## Figures', '```sh', '# not a heading', '```', '## Figures'].join(
      '\n',
    );
    expect([...anchorsOf(markdown)]).toEqual(['a', 'figures', 'figures-1']);
  });

  it('finds relative links and images, not web links or links inside code', () => {
    const markdown = [
      'See [the API](docs/api.md#idempotency) and ![shot](examples/shot.png "title").',
      'Not [this](https://example.com) nor [mail](mailto:a@example.com) nor `[code](x.md)`.',
      '```md',
      '[inside a fence](nowhere.md)',
      '```',
      'An [anchor](#a) alone.',
    ].join('\n');
    expect(relativeLinksOf(markdown)).toEqual([
      { line: 1, target: 'docs/api.md#idempotency' },
      { line: 1, target: 'examples/shot.png' },
      { line: 6, target: '#a' },
    ]);
  });

  it('reports a missing file and a missing heading', () => {
    const readme = join(ROOT, 'README.md');
    expect(brokenLink(readme, 'docs/no-such-file.md')).toBe('docs/no-such-file.md does not exist');
    expect(brokenLink(readme, 'bench/README.md#no-such-heading')).toBe(
      '#no-such-heading: bench/README.md has no such heading',
    );
    expect(brokenLink(readme, 'bench/README.md')).toBeUndefined();
  });
});
