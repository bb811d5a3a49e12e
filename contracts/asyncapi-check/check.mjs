// Validates contracts/asyncapi.yaml with the reference AsyncAPI parser
// (schema validation, reference resolution and the parser's own rules), so
// that what the contract tests generate is a document other tools accept.
// Exit code 1 on any error; warnings are printed and tolerated.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Parser } from '@asyncapi/parser';

const path = fileURLToPath(new URL('../asyncapi.yaml', import.meta.url));
const SEVERITY = ['error', 'warning', 'info', 'hint'];

const { document, diagnostics } = await new Parser().parse(await readFile(path, 'utf8'), {
  source: path,
});
for (const d of diagnostics) {
  const where = d.path.length ? d.path.join('.') : '(root)';
  console.log(`${SEVERITY[d.severity] ?? d.severity} ${d.code} at ${where}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === 0);
if (!document || errors.length > 0) {
  console.error(`asyncapi.yaml is not a valid AsyncAPI document: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(
  `asyncapi.yaml: valid AsyncAPI ${document.version()}: ` +
    `${document.channels().length} channels, ${document.operations().length} operations, ` +
    `${document.components().messages().length} messages`,
);
