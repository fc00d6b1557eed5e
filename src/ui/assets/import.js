// The import wizard (ui/import.rs): sends the chosen file to the import API, shows the
// mapping to adjust, the report and its errors, and offers undo. Builds the report with DOM
// nodes and textContent only. Errors and warnings come with a `code` and `params`; the page
// gives the messages for each code in its language, and the labels of fields and options.
(() => {
  'use strict';
  const form = document.getElementById('import-form');
  if (!form) return;
  const out = document.getElementById('import-report');
  const mappingBox = document.getElementById('import-mapping');
  const s = form.dataset;
  const entity = s.entity;
  const fields = JSON.parse(s.fields || '[]');
  const words = JSON.parse(s.report || '{}');
  const sep = words.sep || ', ';
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || '';
  const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
  let headers = null;

  const el = (tag, text, cls) => {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  };

  // Own keys only, so a name like "constructor" finds nothing rather than a prototype's.
  const own = (map, key) => (map && typeof key === 'string' && Object.prototype.hasOwnProperty.call(map, key)
    ? map[key] : undefined);
  const labelOf = (field) => own(words.labels, field) || field || '';
  const optionLabel = (field, value) => {
    const label = own(own(words.options, field), String(value));
    return label === undefined ? String(value) : label;
  };

  // A problem in the page's language: its code's message with the params filled in (options
  // by their labels), else the server's English message (a code the page does not know).
  const say = (problem, field) => {
    if (typeof problem === 'string') return problem;
    const template = own(words.messages, problem.code);
    if (!template) return problem.message || '';
    const p = problem.params || {};
    return template.replace(/\{(\w+)\}/g, (whole, name) => {
      if (name === 'options') {
        const shown = (p.options || []).map((v) => optionLabel(field, v));
        if (p.more) shown.push('…');
        return shown.join(sep);
      }
      if (name === 'values') return (p.values || []).join(sep);
      if (name === 'field') return labelOf(p.field);
      return p[name] === undefined || p[name] === null ? whole : String(p[name]);
    });
  };

  // The mapping as the selects say: header → field name (or null to leave it out).
  const currentMapping = () => {
    const map = {};
    mappingBox.querySelectorAll('select[data-header]').forEach((sel) => {
      map[sel.dataset.header] = sel.value || null;
    });
    return map;
  };

  const showMapping = (report) => {
    const all = Object.keys(report.mapping || {}).concat(report.unmapped || []);
    if (!headers) headers = all;
    mappingBox.replaceChildren();
    const table = el('table', null, 'grid');
    const head = el('tr');
    head.append(el('th', s.sColumn), el('th', s.sField));
    table.append(head);
    headers.forEach((header) => {
      const tr = el('tr');
      const sel = el('select');
      sel.dataset.header = header;
      sel.setAttribute('aria-label', header);
      sel.append(el('option', s.sSkip));
      sel.firstChild.value = '';
      fields.forEach((f) => {
        const option = el('option', f.label);
        option.value = f.name;
        if ((report.mapping || {})[header] === f.name) option.selected = true;
        sel.append(option);
      });
      const td = el('td');
      td.append(sel);
      tr.append(el('th', header), td);
      table.append(tr);
    });
    mappingBox.append(table);
  };

  const showReport = (report, dryRun) => {
    out.replaceChildren();
    if (!report || report.id === undefined) {
      out.append(el('div', (report && (report.detail || report.title)) || 'error', 'banner error'));
      return;
    }
    out.append(el('h2', dryRun ? s.sChecked : s.sDone));
    const counts = el('p');
    [[s.sRows, report.rows], [s.sCreated, report.created], [s.sUpdated, report.updated],
      [s.sFailed, report.failed]].forEach(([label, n]) => counts.append(el('span', `${label}: ${n}  `)));
    out.append(counts);
    (report.warnings || []).forEach((w) => out.append(el('div', say(w), 'banner info')));
    // The error file and undo side by side under the report.
    const actions = el('div', null, 'row report-actions');
    if ((report.errors || []).length) {
      const table = el('table', null, 'grid');
      const head = el('tr');
      [s.sRow, s.sColumn, s.sField, s.sMessage].forEach((h) => head.append(el('th', h)));
      table.append(head);
      report.errors.forEach((e) => {
        const tr = el('tr');
        [e.row, e.column, labelOf(e.field), say(e, e.field)]
          .forEach((v) => tr.append(el('td', v === null || v === undefined ? '' : v)));
        // The English message on hover, to quote to support or search for.
        if (e.message) tr.lastChild.title = e.message;
        table.append(tr);
      });
      out.append(table);
      const link = el('a', s.sErrors, 'btn');
      link.href = `/api/imports/${report.id}/errors.csv`;
      actions.append(link);
    }
    if (!dryRun && (report.created || report.updated)) {
      const undo = el('button', s.sUndo, 'btn danger');
      undo.type = 'button';
      undo.addEventListener('click', async () => {
        undo.disabled = true;
        const res = await fetch(`/api/imports/${report.id}/undo`, {
          method: 'POST', headers: { 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: '{}',
        });
        const body = await res.json();
        undo.replaceWith(el('p', res.ok ? `${s.sUndone}: ${body.removed + body.restored}` : (body.detail || body.title)));
      });
      actions.append(undo);
    }
    if (actions.childElementCount) out.append(actions);
  };

  const send = async (dryRun) => {
    const file = form.file.files[0];
    if (!file) { form.file.reportValidity(); return; }
    const params = new URLSearchParams();
    params.set('dry_run', dryRun ? 'true' : 'false');
    params.set('mode', form.mode.value);
    if (form.mode.value !== 'create') params.set('key', form.key.value);
    params.set('on_error', form.on_error.value);
    params.set('triggers', form.triggers.checked ? 'true' : 'false');
    if (headers) params.set('mapping', JSON.stringify(currentMapping()));
    const type = file.name.toLowerCase().endsWith('.xlsx') ? XLSX : 'text/csv';
    form.querySelectorAll('button').forEach((b) => { b.disabled = true; });
    try {
      const res = await fetch(`/api/records/${entity}/import?${params}`, {
        method: 'POST', body: file, headers: { 'content-type': type, 'x-csrf-token': csrf },
      });
      const report = await res.json();
      if (res.ok) showMapping(report);
      showReport(report, dryRun);
    } finally {
      form.querySelectorAll('button').forEach((b) => { b.disabled = false; });
    }
  };

  form.file.addEventListener('change', () => { headers = null; mappingBox.replaceChildren(); });
  form.querySelector('[data-import="check"]').addEventListener('click', () => send(true));
  form.querySelector('[data-import="run"]').addEventListener('click', () => send(false));
})();
