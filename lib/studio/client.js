// The template studio's page script (served as a same-origin file: the page's CSP allows only
// 'self' script). Every value from the server or the sample data goes into the page through
// textContent or a form field's value, never innerHTML; the rendered email goes only into a
// sandboxed frame's srcdoc (no allow-scripts, no allow-same-origin).
'use strict';

(function studio() {
  const base = document.body.dataset.base || '';
  const readOnly = document.body.dataset.readonly === 'true';
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, className) => {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  };

  let catalog = [];
  let current = null; // { kind, locale, channel }
  let saved = ''; // the text on disk when loaded or saved
  let version = null;
  let checkTimer = null;
  let checkSeq = 0;
  let saving = false; // our own save changes the files: not a change by someone else

  async function api(path, body) {
    const response = await fetch(base + '/api/' + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
    });
    const json = await response.json().catch(() => ({ message: 'HTTP ' + response.status }));
    return { ok: response.ok, status: response.status, json };
  }

  function keyOf(t) {
    return t.kind + '/' + t.locale + '/' + t.channel;
  }

  function fromHash() {
    const [kind, locale, channel] = decodeURIComponent(location.hash.slice(1)).split('/');
    return kind && locale && channel ? { kind, locale, channel } : null;
  }

  function fillPicker() {
    const picker = $('picker');
    picker.replaceChildren();
    for (const k of catalog) {
      const group = el('optgroup');
      group.label = k.kind + (k.audience === 'ops' ? ' (运维 ops)' : ' (用户 users)');
      for (const channel of k.channels) {
        for (const locale of k.locales) {
          const option = el('option', k.kind + ' · ' + locale + ' · ' + channel);
          option.value = keyOf({ kind: k.kind, locale, channel });
          group.append(option);
        }
      }
      picker.append(group);
    }
  }

  function dirty() {
    return current !== null && $('source').value !== saved;
  }

  async function select(target) {
    current = target;
    location.hash = keyOf(target);
    $('picker').value = keyOf(target);
    const kind = catalog.find((k) => k.kind === target.kind);
    $('kind-description').textContent = kind.description;
    $('data').value = JSON.stringify(kind.sample, null, 2);
    showVariables(kind);
    const { ok, json } = await api(
      'template?kind=' +
        encodeURIComponent(target.kind) +
        '&locale=' +
        encodeURIComponent(target.locale) +
        '&channel=' +
        encodeURIComponent(target.channel),
    );
    if (!ok) return status(json.message, true);
    $('file').textContent = json.file;
    $('source').value = json.text;
    saved = json.text;
    $('send-box').hidden = target.channel !== 'email';
    await check();
  }

  function showVariables(kind) {
    const body = $('variables');
    body.replaceChildren();
    for (const v of kind.variables) {
      const row = el('tr');
      const name = el('td');
      name.append(el('code', '{{ ' + v.name + ' }}'));
      row.append(name, el('td', v.note), el('td', v.example, 'example'));
      body.append(row);
    }
  }

  function scheduleCheck() {
    clearTimeout(checkTimer);
    updateDirty();
    checkTimer = setTimeout(check, 300);
  }

  function updateDirty() {
    $('dirty').hidden = !dirty();
  }

  async function check() {
    if (!current) return;
    const seq = ++checkSeq;
    $('state').textContent = '检查中… checking';
    const { ok, json } = await api('check', { ...current, text: $('source').value, data: $('data').value });
    if (seq !== checkSeq) return; // a later edit's answer is on its way
    $('state').textContent = '';
    if (!ok) return status(json.message, true);
    showProblems(json);
    showMessage(json);
  }

  function showProblems(result) {
    const list = $('problems');
    list.replaceChildren();
    for (const p of result.problems) {
      const item = el('li');
      const where = el('a', p.file + ':' + p.line, 'where');
      where.href = '#';
      where.addEventListener('click', (event) => {
        event.preventDefault();
        goToLine(p.line);
      });
      item.append(where, document.createTextNode(' ' + p.message));
      list.append(item);
    }
    $('lint-ok').hidden = result.problems.length > 0;
    $('lint-count').textContent = result.problems.length ? result.problems.length + ' 个问题 problem(s)' : '';
    $('others').textContent = result.otherProblems
      ? '其他文件还有 ' +
        result.otherProblems +
        ' 个问题 (other files have ' +
        result.otherProblems +
        ' problem(s): run forewarn templates lint)'
      : '';
    $('data-error').textContent = result.dataError || '';
  }

  function goToLine(line) {
    const source = $('source');
    const lines = source.value.split('\n');
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    source.focus();
    source.setSelectionRange(start, start + (lines[line - 1] || '').length);
  }

  function showMessage(result) {
    const m = result.message;
    $('subject-label').textContent = current.channel === 'email' ? '主题 Subject' : '标题 Title';
    $('subject').textContent = m ? (m.subject ?? m.title ?? '') : '—';
    $('text').textContent = m ? m.text : '';
    // The email's own HTML, in a frame that runs no script and has no origin of ours.
    $('preview').srcdoc = m ? m.html : '';
    $('preview-stale').hidden = m !== null;
  }

  function status(message, bad) {
    const node = $('status');
    node.textContent = message;
    node.className = bad ? 'bad' : 'good';
  }

  async function save() {
    status('保存中… saving', false);
    saving = true;
    const { ok, json } = await api('save', { ...current, text: $('source').value }).finally(() => {
      saving = false;
    });
    if (!ok) {
      if (json.problems) showProblems({ problems: json.problems, otherProblems: 0, dataError: null });
      return status('未保存 ' + json.message, true);
    }
    saved = $('source').value;
    version = json.version;
    $('changed').hidden = true;
    updateDirty();
    status('已保存 Saved ' + json.file + (json.problems.length ? '' : ' — lint ok'), false);
  }

  async function testSend() {
    status('发送中… sending', false);
    const { ok, json } = await api('test-send', {
      ...current,
      text: $('source').value,
      data: $('data').value,
      to: $('send-to').value,
    });
    status(ok ? '已发送测试邮件 Test sent to ' + json.to : '未发送 Not sent: ' + json.message, !ok);
  }

  async function poll() {
    try {
      const { ok, json } = await api('version');
      if (ok && !saving) {
        if (version !== null && json.version !== version) {
          if (!dirty()) {
            location.reload();
            return;
          }
          $('changed').hidden = false;
        }
        version = json.version;
      }
    } catch {
      // The studio was stopped or the network dropped: try again.
    }
    setTimeout(poll, 1000);
  }

  async function start() {
    $('mode').textContent = readOnly
      ? '只读 read-only (running daemon)'
      : '本地 local checkout: 可保存 can save';
    $('save').hidden = readOnly;
    const { ok, json } = await api('catalog');
    if (!ok) return status(json.message, true);
    catalog = json.kinds;
    fillPicker();
    $('picker').addEventListener('change', () => {
      if (dirty() && !confirm('放弃未保存的修改？ Discard unsaved changes?')) {
        $('picker').value = keyOf(current);
        return;
      }
      const [kind, locale, channel] = $('picker').value.split('/');
      void select({ kind, locale, channel });
    });
    $('source').addEventListener('input', scheduleCheck);
    $('data').addEventListener('input', scheduleCheck);
    $('save').addEventListener('click', () => void save());
    $('send').addEventListener('click', () => void testSend());
    $('reload').addEventListener('click', () => location.reload());
    const wanted = fromHash();
    const first = catalog[0];
    const known =
      wanted && catalog.some((k) => k.kind === wanted.kind && k.channels.includes(wanted.channel));
    await select(known ? wanted : { kind: first.kind, locale: first.locales[0], channel: first.channels[0] });
    document.body.dataset.ready = 'true';
    void poll();
  }

  void start();
})();
