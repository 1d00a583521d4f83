#!/usr/bin/env node
// Validates ../../asyncapi.json (or argv[2]):
//  1. @asyncapi/parser: the AsyncAPI JSON Schema and the Spectral AsyncAPI
//     ruleset.  Every diagnostic is printed; error severity fails.
//  2. Every message example validates against its message payload schema
//     (the parser does not check this for AsyncAPI 3).
//  3. The order schemas are the same as in ../../openapi.json: the events
//     carry "the order as the API returned it", so the two must not drift.
// Exit status 1 if anything failed, 0 otherwise.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';
import { schemaCompiler, deref } from './lib/schemas.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const file = resolve(process.argv[2] ?? resolve(here, '../../asyncapi.json'));
const openapiFile = resolve(here, '../../openapi.json');
const SHARED_SCHEMAS = ['OrderId', 'CustomerId', 'OrderItem', 'OrderItems', 'OrderStatus', 'Order'];

const severityName = {
  [DiagnosticSeverity.Error]: 'error',
  [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info',
  [DiagnosticSeverity.Hint]: 'hint',
};

let text;
try {
  text = readFileSync(file, 'utf8');
} catch (err) {
  console.error(`validate-asyncapi: cannot read ${file}: ${err.message}`);
  process.exit(1);
}

const { document, diagnostics } = await new Parser().parse(text, { source: file });

let errors = 0;
let warnings = 0;
for (const d of diagnostics) {
  const sev = severityName[d.severity] ?? String(d.severity);
  if (d.severity === DiagnosticSeverity.Error) errors++;
  else if (d.severity === DiagnosticSeverity.Warning) warnings++;
  const where = d.path && d.path.length ? `#/${d.path.join('/')}` : '#';
  const line = d.range ? `${d.range.start.line + 1}:${d.range.start.character + 1}` : '-';
  console.log(`${file}:${line} ${sev} ${d.code} ${where}: ${d.message}`);
}
if (document === undefined && errors === 0) errors = 1; // unparseable without an error diagnostic

function fail(msg) {
  errors++;
  console.log(`${file}: error ${msg}`);
}

if (document !== undefined) {
  const raw = JSON.parse(text);
  const compiler = schemaCompiler(raw, 'draft-07');
  for (const [name, message] of Object.entries(raw.components?.messages ?? {})) {
    const msg = deref(raw, message);
    if (!msg.payload) continue;
    const validate = compiler.compile(msg.payload);
    (msg.examples ?? []).forEach((example, i) => {
      if (example.payload !== undefined && !validate(example.payload)) {
        fail(`#/components/messages/${name}/examples/${i}: ${compiler.errorsText(validate.errors)}`);
      }
    });
  }

  const openapi = JSON.parse(readFileSync(openapiFile, 'utf8'));
  for (const name of SHARED_SCHEMAS) {
    if (!isDeepStrictEqual(raw.components?.schemas?.[name], openapi.components?.schemas?.[name])) {
      fail(`#/components/schemas/${name} differs from the same schema in ${openapiFile}`);
    }
  }
}

const version = document ? document.version() : 'unknown';
console.log(
  `validate-asyncapi: ${file} (AsyncAPI ${version}): ${errors} errors, ${warnings} warnings, ${diagnostics.length} parser diagnostics`,
);
process.exit(errors > 0 ? 1 : 0);
