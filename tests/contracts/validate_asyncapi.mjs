// Validate contracts/asyncapi.yaml with the AsyncAPI project's own parser.
//
// Python has no AsyncAPI 3.0 parser that follows the spec's rules as the tools
// publishers use do (Studio, the generator), so the document is checked by the
// one they are built on: @asyncapi/parser, installed by .ci/run into
// tests/contracts/node_modules from tests/contracts/package.json.
//
//   node tests/contracts/validate_asyncapi.mjs [path/to/asyncapi.yaml]
//
// Exit 0 and one "ok" line when the parser finds no error and no warning; else
// every diagnostic on stderr and exit 1 (a warning fails too, so the document
// stays clean for every tool that reads it).

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { DiagnosticSeverity, Parser } from '@asyncapi/parser';

const here = path.dirname(fileURLToPath(import.meta.url));
const file = path.resolve(process.argv[2] ?? path.join(here, '..', '..', 'contracts', 'asyncapi.yaml'));
const severityName = Object.fromEntries(
  Object.entries(DiagnosticSeverity).map(([name, value]) => [value, name.toLowerCase()]),
);

const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(file, 'utf8'), {
  source: file,
});

const reported = diagnostics.filter(
  (d) => d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning,
);
for (const d of reported) {
  const where = d.path.length ? d.path.join('.') : '(document)';
  console.error(`${severityName[d.severity]} ${d.code} at ${where}: ${d.message}`);
}
if (document === undefined || reported.length > 0) {
  console.error(`${path.relative(process.cwd(), file)}: not a valid AsyncAPI document`);
  process.exit(1);
}

const channels = document.channels().all().map((channel) => channel.address());
const messages = document.allMessages().all().map((message) => message.name());
console.log(
  `ok ${path.relative(process.cwd(), file)}: AsyncAPI ${document.version()}, ` +
    `channel ${channels.join(', ')}, ${messages.length} messages (${messages.join(', ')})`,
);
