// The API docs page (/docs): lists the operations and schemas of
// /api/openapi.json. A file of its own, so the page needs no inline script
// (the Content-Security-Policy allows scripts from the shop only).
fetch('/api/openapi.json').then(r => r.json()).then(doc => {
  document.getElementById('desc').textContent = (doc.info.description || '') + ' (OpenAPI ' + doc.openapi + ', version ' + doc.info.version + ')';
  const ops = document.getElementById('ops');
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      const div = document.createElement('div'); div.className = 'op';
      const head = document.createElement('div');
      const m = document.createElement('span'); m.className = 'm ' + method; m.textContent = method;
      const p = document.createElement('code'); p.textContent = path;
      head.append(m, p, document.createTextNode(' — ' + (op.summary || op.description || '')));
      div.append(head);
      if (op.security) { const s = document.createElement('div'); s.textContent = 'Requires a bearer token.'; div.append(s); }
      const d = document.createElement('details'); const sum = document.createElement('summary'); sum.textContent = 'request and responses';
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify({parameters: op.parameters, requestBody: op.requestBody, responses: op.responses}, null, 2);
      d.append(sum, pre); div.append(d); ops.append(div);
    }
  }
  const schemas = document.getElementById('schemas');
  for (const [name, schema] of Object.entries((doc.components || {}).schemas || {})) {
    const d = document.createElement('details'); const s = document.createElement('summary'); s.textContent = name;
    const pre = document.createElement('pre'); pre.textContent = JSON.stringify(schema, null, 2);
    d.append(s, pre); schemas.append(d);
  }
}).catch(e => { document.getElementById('desc').textContent = 'Could not load the API description: ' + e; });
