/*
 * Cairn's pause: the infrastructure ("sandbox") container of every pod on the local cluster.
 * It holds the pod's namespaces open: blocks in pause(), reaps any child that gets re-parented to
 * it (it is PID 1 when the pod shares its PID namespace), and exits 0 on SIGTERM/SIGINT so that
 * sandboxes stop at once instead of waiting for SIGKILL.
 *
 * Built statically (gcc -static) by hack/images/build.sh and committed FROM scratch as
 * docker.io/cairn/pause:dev.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) {
    (void)sig;
    _exit(0);
}

static void on_chld(int sig) {
    int saved = errno;
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

int main(int argc, char **argv) {
    struct sigaction sa;

    if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
        puts("cairn-pause 1");
        return 0;
    }
    if (getpid() != 1) {
        fputs("cairn-pause: warning: not running as PID 1\n", stderr);
    }

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_term;
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0) {
        perror("cairn-pause: sigaction");
        return 1;
    }
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    if (sigaction(SIGCHLD, &sa, NULL) < 0) {
        perror("cairn-pause: sigaction");
        return 1;
    }

    for (;;) {
        pause();
    }
}
