#include "privileges.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "settings.h"

int privileges_drop(const char *prog)
{
    if (geteuid() != 0)
        return 0;
    const char *name = settings_env("WORKER_USER");
    if (name == NULL)
        name = "www-data";
    struct passwd *pw = getpwnam(name);
    if (pw == NULL) {
        fprintf(stderr, "%s: WORKER_USER %s does not exist\n", prog, name);
        return -1;
    }
    /* WORKER_USER=root keeps root: scripts/run-stack asks for it only when
     * the usual account cannot reach the runtime directory (a clone under
     * /root), and says so in its own log line, once for the whole stack. */
    if (pw->pw_uid == 0)
        return 0;
    /* Group first: once the uid is gone, so is the right to change it. */
    if (setgroups(1, &pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0) {
        fprintf(stderr, "%s: cannot drop privileges to %s: %s\n", prog, name,
                strerror(errno));
        return -1;
    }
    if (setuid(0) == 0) {
        fprintf(stderr, "%s: still able to regain root; refusing to run\n", prog);
        return -1;
    }
#if defined(__SANITIZE_ADDRESS__)
    /* A uid change makes the process non-dumpable, and LeakSanitizer's
     * exit-time check cannot then inspect it.  Sanitizer builds are test
     * builds; release builds stay non-dumpable. */
    if (prctl(PR_SET_DUMPABLE, 1) != 0)
        fprintf(stderr, "%s: PR_SET_DUMPABLE: %s\n", prog, strerror(errno));
#endif
    return 0;
}
