// The template studio on the HTTP role: /admin/studio, read-only (preview, lint, test send; no
// save route), behind FOREWARN_ADMIN_TOKEN. Replicas never rewrite their templates; changes ship
// through the repository. The routes themselves are lib/studio/routes.ts, shared with
// `forewarn templates studio`.
import { registerStudio } from '../../studio/routes.ts';
import type { HttpRoutes } from '../deps.ts';

export const STUDIO_BASE = '/admin/studio';

export const studioRoutes: HttpRoutes = {
  parts: [`http:${STUDIO_BASE}`],
  register(server, deps) {
    const studio = deps.studio;
    // A server built without the templates' resources (tests of other routes) has no studio.
    if (!studio) return;
    registerStudio(server, {
      base: STUDIO_BASE,
      dir: studio.templatesDir,
      readOnly: true,
      adminToken: deps.adminToken,
      testSend: () => {
        const config = studio.config();
        return {
          allow: config.templates.studio.testSendAllow,
          sender: studio.email(),
          messageIdDomain: config.notifications.email.messageIdDomain,
        };
      },
    });
  },
};
