// Tokenises .sae files with editors/vscode/syntaxes/sae.tmLanguage.json through vscode-textmate
// (the engine VS Code uses) and checks the scopes against an independent scan of each line:
// every comment character gets a comment scope, every string a string scope, every keyword a
// keyword or storage scope, every number constant.numeric, and no word inside a comment or
// string gets a keyword scope, nor any other identifier (keywords match only as whole words).
//
// Usage: SAE_DSL_NODE_MODULES=DIR node tests/editor/tokenize.mjs FILE.sae...
// (DIR holds vscode-textmate and vscode-oniguruma; see tests/editor/package.json.)
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const modules = process.env.SAE_DSL_NODE_MODULES || join(here, '..', '..', 'editors', 'vscode', 'node_modules');
const require = createRequire(join(modules, 'noop.js'));
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

const wasm = readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm')).buffer;
await oniguruma.loadWASM(wasm);
const registry = new vsctm.Registry({
  onigLib: Promise.resolve({
    createOnigScanner: (p) => new oniguruma.OnigScanner(p),
    createOnigString: (s) => new oniguruma.OnigString(s),
  }),
  loadGrammar: async (scope) => {
    if (scope !== 'source.sae') return null;
    const path = join(here, '..', '..', 'editors', 'vscode', 'syntaxes', 'sae.tmLanguage.json');
    return vsctm.parseRawGrammar(readFileSync(path, 'utf8'), path);
  },
});
const grammar = await registry.loadGrammar('source.sae');

const KEYWORDS = new Set(['import', 'net', 'data', 'latent', 'encoder', 'generator', 'cost', 'penalty', 'train', 'on', 'prior', 'return', 'let', 'fn', 'param', 'if', 'then', 'else', 'for', 'in']);

// The independent scan of one line: ranges of comments, strings, keywords and numbers.
function scan(line) {
  const out = { comments: [], strings: [], keywords: [], numbers: [], words: [], covered: [] };
  let i = 0;
  while (i < line.length) {
    const ch = line[i];
    if (ch === '#' || line.startsWith('//', i)) {
      out.comments.push([i, line.length]);
      out.covered.push([i, line.length]);
      break;
    }
    if (ch === '"') {
      let j = line.indexOf('"', i + 1);
      j = j < 0 ? line.length : j + 1;
      out.strings.push([i, j]);
      out.covered.push([i, j]);
      i = j;
      continue;
    }
    if (/[A-Za-z_]/.test(ch)) {
      let j = i;
      while (j < line.length && /[A-Za-z0-9_]/.test(line[j])) j++;
      (KEYWORDS.has(line.slice(i, j)) ? out.keywords : out.words).push([i, j]);
      i = j;
      continue;
    }
    if (/[0-9]/.test(ch) && !(i > 0 && /[A-Za-z0-9_.]/.test(line[i - 1]))) {
      const m = /^[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?/.exec(line.slice(i));
      out.numbers.push([i, i + m[0].length]);
      i += m[0].length;
      continue;
    }
    i++;
  }
  return out;
}

function check(name, text) {
  const problems = [];
  const counts = { keywords: 0, comments: 0, strings: 0, numbers: 0, words: 0 };
  let state = vsctm.INITIAL;
  text.split('\n').forEach((line, n) => {
    const r = grammar.tokenizeLine(line, state);
    state = r.ruleStack;
    const scopesAt = (i) => {
      const t = r.tokens.find((t) => t.startIndex <= i && i < t.endIndex);
      return t ? t.scopes : [];
    };
    const expect = (ranges, kind, ok) => {
      for (const [a, b] of ranges) {
        counts[kind] += 1;
        for (let i = a; i < b; i++) {
          const scopes = scopesAt(i);
          if (!ok(scopes)) {
            problems.push(`${name}:${n + 1}:${i + 1}: ${kind.slice(0, -1)} ${JSON.stringify(line.slice(a, b))} has scopes ${scopes.join(' ')}`);
            break;
          }
        }
      }
    };
    const s = scan(line);
    const has = (prefix) => (scopes) => scopes.some((x) => x.startsWith(prefix));
    expect(s.comments, 'comments', (sc) => has('comment.')(sc) && !has('keyword.')(sc.filter((x) => x !== 'source.sae')) && !has('storage.')(sc));
    expect(s.strings, 'strings', (sc) => has('string.')(sc) && !has('keyword.')(sc));
    expect(s.keywords, 'keywords', (sc) => has('keyword.')(sc) || has('storage.type')(sc));
    expect(s.numbers, 'numbers', has('constant.numeric'));
    // Keywords match only as whole words: `conv28_encoder`, `latent_dim`, `one` are not keywords.
    expect(s.words, 'words', (sc) => !has('keyword.')(sc) && !has('storage.')(sc));
  });
  return { problems, counts };
}

// A case that cannot pass vacuously: keywords inside both kinds of comment and a string, real
// numbers, a space `R^16`, names being defined.
const selfCheck = [
  'let lr = 1e-3  # the net latent on',
  'latent where: R^16 ~ normal(0.5, 2.)  // prior return train',
  'data mnist(dir = "net train", scale = 2.5E+4)',
  'prior ring(k: int, r: real = 1) on S^9 { return z }',
  'encoder { conv28_encoder(latent_dim) one netx }',
].join('\n');
const self = check('self-check', selfCheck);
const want = { keywords: 7, comments: 2, strings: 1, numbers: 7 };
const selfProblems = [...self.problems];
for (const k of Object.keys(want)) {
  if (self.counts[k] !== want[k]) selfProblems.push(`${k}: found ${self.counts[k]}, expected ${want[k]}`);
}
// Scopes at a given line and column of the self-check source.
const scopesAt = (lineNo, col) => {
  let state = vsctm.INITIAL;
  const lines = selfCheck.split('\n');
  for (let n = 0; n < lineNo; n++) state = grammar.tokenizeLine(lines[n], state).ruleStack;
  const t = grammar.tokenizeLine(lines[lineNo], state).tokens.find((t) => t.startIndex <= col && col < t.endIndex);
  return t ? t.scopes : [];
};
const expectScope = (lineNo, text, scope) => {
  const col = selfCheck.split('\n')[lineNo].indexOf(text);
  const scopes = scopesAt(lineNo, col);
  if (!scopes.some((s) => s.startsWith(scope))) selfProblems.push(`${text}: has scopes ${scopes.join(' ')}, expected ${scope}`);
};
expectScope(0, 'lr', 'variable.other.constant');
expectScope(1, 'R^16', 'support.type.space');
expectScope(1, 'normal', 'entity.name.function.call');
expectScope(1, '// prior', 'comment.line.double-slash');
expectScope(0, '# the', 'comment.line.number-sign');
expectScope(3, 'ring', 'entity.name.function');
expectScope(3, 'S^9', 'support.type.space');
if (selfProblems.length) {
  console.error('self-check failed:');
  selfProblems.forEach((p) => console.error(`  ${p}`));
  process.exit(1);
}

let failed = 0;
for (const file of process.argv.slice(2)) {
  const { problems, counts } = check(file, readFileSync(file, 'utf8'));
  if (problems.length) {
    failed += problems.length;
    problems.forEach((p) => console.error(p));
  } else {
    console.log(`ok ${file}: ${counts.keywords} keywords, ${counts.comments} comments, ${counts.strings} strings, ${counts.numbers} numbers`);
  }
}
if (failed) {
  console.error(`${failed} tokens with the wrong scope`);
  process.exit(1);
}
