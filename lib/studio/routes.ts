// The template studio's routes, for both of its homes: `forewarn templates studio` on a checkout
// (at /, with save) and the HTTP role of a running daemon (at /admin/studio, read-only: no save
// route exists there at all, and every route sits behind FOREWARN_ADMIN_TOKEN). The page is a
// static shell; its served script fetches everything else as JSON and writes it as text.
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { EmailSender } from '../channels/email.ts';
import { requireAdmin } from '../http/auth.ts';
import { fromPackageRoot } from '../package-root.ts';
import { StudioError, Workbench, type Target } from './workbench.ts';

// From the package, not next to this module: the compiled build (dist/) holds code only.
const CLIENT = readFileSync(fromPackageRoot('lib', 'studio', 'client.js'), 'utf8');

/**
 * The studio's own CSP, on its responses only (the HTTP role's default forbids all script): its
 * one served script, its inline style, calls to its own origin. The email preview is a srcdoc
 * frame with an empty sandbox, so nothing in an email runs.
 */
export const STUDIO_CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; frame-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** A template and its sample data: far more than the role's 8 KB forms. */
const BODY_LIMIT = 512 * 1024;

export interface StudioOptions {
  /** '' on a checkout, '/admin/studio' on the HTTP role. */
  base: string;
  dir: string;
  readOnly: boolean;
  /** FOREWARN_ADMIN_TOKEN on the HTTP role; absent on a local studio (it binds to 127.0.0.1). */
  adminToken?: string | undefined;
  /** Test sends: the allow-list, the email sender and the Message-ID domain, read per send. */
  testSend: () => { allow: readonly string[]; sender: EmailSender; messageIdDomain: string };
}

export function registerStudio(server: FastifyInstance, options: StudioOptions): void {
  const workbench = new Workbench(options.dir);
  const { base } = options;
  void server.register(async (scope) => {
    if (options.adminToken !== undefined || options.readOnly) {
      scope.addHook('onRequest', requireAdmin(options.adminToken, `${base}/`));
    }
    // Runs after the server's own security headers (a parent's hooks run first): replaces its CSP.
    scope.addHook('onSend', async (_request, reply, payload) => {
      reply.header('content-security-policy', STUDIO_CSP);
      return payload;
    });
    scope.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
      if (error instanceof StudioError) {
        return reply
          .code(error.status)
          .send({ error: error.code, message: error.message, problems: error.problems });
      }
      const status = error.statusCode !== undefined && error.statusCode < 500 ? error.statusCode : 500;
      if (status >= 500)
        request.log.error({ route: request.routeOptions.url ?? null, err: error }, 'studio failed');
      return reply.code(status).send({
        error: status >= 500 ? 'internal' : 'bad-request',
        message: status >= 500 ? 'something went wrong in the studio; nothing was changed' : error.message,
      });
    });

    const page = (_request: FastifyRequest, reply: FastifyReply) =>
      reply.type('text/html; charset=utf-8').send(studioPage(base, options.readOnly));
    scope.get(base === '' ? '/' : base, page);
    if (base !== '') scope.get(`${base}/`, page);
    scope.get(`${base}/studio.js`, (_request, reply) =>
      reply.type('text/javascript; charset=utf-8').send(CLIENT),
    );
    scope.get(`${base}/api/catalog`, async () => ({
      kinds: await workbench.catalog(),
      readOnly: options.readOnly,
    }));
    scope.get(`${base}/api/version`, async () => ({ version: await workbench.version() }));
    scope.get(`${base}/api/template`, async (request) => {
      const { target, path } = targetOf(workbench, request.query);
      return { file: path, text: await workbench.read(target) };
    });
    scope.post(`${base}/api/check`, { bodyLimit: BODY_LIMIT }, async (request) => {
      const body = bodyOf(request.body);
      const { target } = targetOf(workbench, body);
      return workbench.check(target, textOf(body.text), dataOf(body.data));
    });
    scope.post(`${base}/api/test-send`, { bodyLimit: BODY_LIMIT }, async (request) => {
      const body = bodyOf(request.body);
      const { target } = targetOf(workbench, body);
      const sent = await workbench.testSend(
        { target, text: textOf(body.text), data: dataOf(body.data), to: body.to },
        options.testSend(),
      );
      request.log.info({ kind: target.kind, locale: target.locale }, 'studio test send');
      return sent;
    });
    // A running daemon never rewrites its templates: the route does not exist there.
    if (!options.readOnly) {
      scope.post(`${base}/api/save`, { bodyLimit: BODY_LIMIT }, async (request) => {
        const body = bodyOf(request.body);
        const { target } = targetOf(workbench, body);
        const result = await workbench.save(target, textOf(body.text));
        return { ...result, version: await workbench.version() };
      });
    }
  });
}

function bodyOf(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new StudioError(400, 'expected a JSON object body: { kind, locale, channel, text, data }');
  }
  return body as Record<string, unknown>;
}

/** The target named by a query or body, and its file relative to the templates directory. */
function targetOf(workbench: Workbench, input: unknown): { target: Target; path: string } {
  const { kind, locale, channel } = (input ?? {}) as Record<string, unknown>;
  const { target } = workbench.fileOf({ kind, locale, channel });
  return { target, path: `${target.kind}/${target.locale}.${target.channel}.liquid` };
}

function textOf(text: unknown): string {
  if (typeof text !== 'string') throw new StudioError(400, 'expected "text": the template as a string');
  return text;
}

function dataOf(data: unknown): string | null {
  if (data === undefined || data === null) return null;
  if (typeof data !== 'string') throw new StudioError(400, 'expected "data": the sample data as JSON text');
  return data;
}

/** The page shell: no data in it but the base path and the mode (both ours, escaped anyway). */
export function studioPage(base: string, readOnly: boolean): string {
  const attr = (value: string) => value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>模板工作室 · forewarn template studio</title>
<style>
body{margin:0;font:14px/1.5 -apple-system,'Segoe UI','PingFang SC','Noto Sans CJK SC','Microsoft YaHei',sans-serif;color:#1f2329;background:#f4f5f7}
header{display:flex;gap:16px;align-items:center;padding:10px 16px;background:#1f2a44;color:#fff}
header h1{font-size:17px;margin:0}#mode{font-size:12px;background:#3a4a70;padding:2px 8px;border-radius:10px}
main{display:grid;grid-template-columns:minmax(360px,1fr) minmax(360px,1fr);gap:12px;padding:12px 16px}
section{background:#fff;border:1px solid #e3e6ea;border-radius:8px;padding:10px 12px}
h2{font-size:14px;margin:0 0 6px 0;color:#3b4048}
select,input{font:inherit}#picker{min-width:320px}
textarea{width:100%;box-sizing:border-box;font:13px/1.45 ui-monospace,'Noto Sans Mono CJK SC',Menlo,monospace;border:1px solid #cfd4da;border-radius:6px;padding:6px}
#source{height:300px}#data{height:170px}
#problems{margin:6px 0;padding-left:18px;color:#b3261e}#problems .where{font-family:ui-monospace,monospace;color:#b3261e;font-weight:600}
#lint-ok{color:#1b7f3b}.bad{color:#b3261e}.good{color:#1b7f3b}#data-error{color:#b3261e;white-space:pre-wrap}
#subject{font-weight:600;font-size:15px;padding:4px 0}
.frames{display:grid;grid-template-columns:3fr 2fr;gap:8px}
iframe{width:100%;height:460px;border:1px solid #cfd4da;border-radius:6px;background:#fff}
#text{white-space:pre-wrap;margin:0;font:13px/1.5 inherit;background:#fafbfc;border:1px solid #e3e6ea;border-radius:6px;padding:8px;height:444px;overflow:auto}
table{border-collapse:collapse;width:100%}td{border-top:1px solid #eef0f2;padding:4px 6px;vertical-align:top}td.example{color:#555;word-break:break-all;font-size:12px}
.wide{grid-column:1 / -1}.muted{color:#8a9099;font-size:12px}button{font:inherit;padding:4px 12px;border-radius:6px;border:1px solid #1f2a44;background:#1f2a44;color:#fff;cursor:pointer}
#changed{background:#fff4d6;border:1px solid #e0b84a;padding:6px 10px;border-radius:6px}
</style>
</head>
<body data-base="${attr(base)}" data-readonly="${readOnly ? 'true' : 'false'}">
<header><h1>模板工作室 Template studio</h1><span id="mode"></span>
<select id="picker" aria-label="模板 template"></select><span id="status" role="status"></span></header>
<main>
<section>
<h2>模板 Template <span class="muted">— <span id="file"></span></span> <span id="dirty" class="muted" hidden>（未保存 unsaved）</span></h2>
<p id="kind-description" class="muted"></p>
<p id="changed" hidden>此文件已在磁盘上更改。 The file changed on disk. <button id="reload" type="button">重新载入 Reload</button></p>
<textarea id="source" spellcheck="false" aria-label="模板文本 template text"></textarea>
<div><button id="save" type="button">保存 Save</button> <span id="state" class="muted"></span></div>
<h2>检查 Lint <span id="lint-count" class="bad"></span></h2>
<p id="lint-ok">没有问题 No problems</p>
<ol id="problems"></ol>
<p id="others" class="muted"></p>
<h2>示例数据 Sample data (JSON)</h2>
<textarea id="data" spellcheck="false" aria-label="示例数据 sample data"></textarea>
<p id="data-error"></p>
</section>
<section>
<h2 id="subject-label">主题 Subject</h2>
<div id="subject"></div>
<p id="preview-stale" class="muted" hidden>预览暂不可用：请先修正问题。 No preview until the problems are fixed.</p>
<div class="frames">
<div><h2>HTML</h2><iframe id="preview" sandbox="" title="邮件预览 email preview"></iframe></div>
<div><h2>纯文本 Plain text</h2><pre id="text"></pre></div>
</div>
<div id="send-box"><h2>测试发送 Test send</h2>
<input id="send-to" type="email" placeholder="you@example.com" aria-label="收件人 recipient"> <button id="send" type="button">发送测试邮件 Send test</button>
<span class="muted">仅限允许的地址 allow-listed addresses only (templates.studio.testSendAllow)</span></div>
</section>
<section class="wide">
<h2>可用变量 Variables this message offers</h2>
<table><thead><tr><td><b>变量 Variable</b></td><td><b>含义 What it holds</b></td><td><b>示例 Example</b></td></tr></thead><tbody id="variables"></tbody></table>
</section>
</main>
<script src="${attr(base)}/studio.js"></script>
</body>
</html>
`;
}
