// Validate an OpenAPI 3.1 document with @apidevtools/swagger-parser (JSON Schema validation
// against the OpenAPI 3.1 schema and $ref resolution), plus the semantic checks swagger-parser
// runs only for Swagger 2.0 (specCheck below): unique operationIds, every `{param}` of a path
// declared as a required path parameter and no undeclared one.
// Usage: node validate_openapi.mjs <file.yaml>
// Prints one JSON line: {"openapi": "3.1.0", "routes": {"/path": ["GET", …]}, "pending": [paths
// marked x-ringcast-pending]}; exits 1 with the validator's message otherwise.
import SwaggerParser from '@apidevtools/swagger-parser';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

async function main() {
  const file = process.argv[2];
  if (!file) throw new Error('usage: validate_openapi.mjs <file>');
  const api = await SwaggerParser.validate(file);
  if (!String(api.openapi).startsWith('3.1')) {
    throw new Error(`expected OpenAPI 3.1, found ${api.openapi}`);
  }
  specCheck(api);
  const routes = {};
  const pending = [];
  for (const [path, item] of Object.entries(api.paths || {})) {
    routes[path] = METHODS.filter((m) => item[m]).map((m) => m.toUpperCase()).sort();
    if (item['x-ringcast-pending'] === true) pending.push(path);
  }
  console.log(JSON.stringify({ openapi: api.openapi, routes, pending }));
}

function specCheck(api) {
  const ids = new Map();
  for (const [path, item] of Object.entries(api.paths || {})) {
    const inTemplate = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
    for (const m of METHODS) {
      const op = item[m];
      if (!op) continue;
      const where = `${m.toUpperCase()} ${path}`;
      if (op.operationId) {
        if (ids.has(op.operationId)) {
          throw new Error(`${where}: operationId ${op.operationId} also used by ${ids.get(op.operationId)}`);
        }
        ids.set(op.operationId, where);
      }
      const params = new Map();
      for (const p of [...(item.parameters || []), ...(op.parameters || [])]) {
        params.set(`${p.in}:${p.name}`, p);
      }
      const declared = [...params.values()].filter((p) => p.in === 'path');
      for (const p of declared) {
        if (p.required !== true) throw new Error(`${where}: path parameter ${p.name} must be required`);
      }
      const names = declared.map((p) => p.name).sort();
      if (JSON.stringify(names) !== JSON.stringify(inTemplate)) {
        throw new Error(`${where}: path parameters ${JSON.stringify(names)} do not match the template ${JSON.stringify(inTemplate)}`);
      }
    }
  }
}

main().catch((e) => {
  console.error(e && e.message ? e.message : String(e));
  process.exit(1);
});
