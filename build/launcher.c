/* The first code dist/gnt runs: checks the unpack directory, then runs the static bundle.
 *
 * dist/gnt is this small static program followed by the staticx bundle and a 16-byte trailer
 * (the bundle's offset, then a magic). The bundle unpacks itself into $TMPDIR (or /tmp) and runs
 * from there, so a read-only or noexec /tmp would stop it before gnt could say why: this program
 * checks the directory first and names the fix in one line (exit 2). It then makes a private
 * directory there, copies the bundle into it, runs it with TMPDIR pointing there (staticx and
 * PyInstaller unpack inside it; the user's TMPDIR is kept in _GNT_TMPDIR for gnt to give back
 * to the tools it runs), and removes the whole directory when the bundle exits, whatever became
 * of it (a hang-up kills staticx's bootloader before it cleans up). It returns the bundle's
 * exit status. Linked statically (musl): it needs nothing from the host.
 *
 * Signals. Until gnt's own handlers are up, Python's start-up would print a KeyboardInterrupt
 * traceback for a Ctrl-C (or die of a SIGTERM with nothing said). So this program holds SIGINT,
 * SIGTERM and SIGHUP (blocks those not blocked already) across the exec: the bundle's bootloaders
 * and gnt's interpreter start with them blocked, and a signal sent meanwhile waits. gnt installs
 * its handlers, then unblocks the ones named in _GNT_HELD_SIGNALS, and any waiting signal is
 * handled there (exit 128+signal, one line). It also writes its pid to the pipe named in
 * _GNT_LAUNCHER_FD: a signal sent to this process alone (kill, timeout, a container runtime) goes
 * to gnt directly, since the bootloaders in between keep the signals blocked to the end. A signal
 * the caller ignores (`nohup`, a shell's `cmd &`) is left alone: ignored here and, across exec, in gnt.
 *
 * File capabilities (setcap) on dist/gnt stop here on purpose: the bundle runs from files the
 * user can write, so passing a capability on (as an ambient one) would hand it to any code the
 * user puts there. This program says so in one line and runs gnt without it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAGIC "GNTBNDL1"  /* last 8 bytes of dist/gnt; the 8 before them: the bundle's offset */
#define EXIT_ERROR 2      /* gnt's exit code for an unusable environment */
#define CAPABILITY_VERSION_3 0x20080522  /* linux/capability.h: 64-bit sets, two data words */

struct capability_header { uint32_t version; int pid; };  /* linux/capability.h (musl has no kernel headers) */
struct capability_data { uint32_t effective, permitted, inheritable; };

static pid_t child;           /* the bundle (staticx's bootloader) */
static volatile pid_t gnt;    /* gnt's interpreter, once it has said its pid; 0 before */
static volatile sig_atomic_t waiting[NSIG];  /* signals sent to this process alone before gnt said its pid */

static const int HELD[] = {SIGINT, SIGTERM, SIGHUP};

static void pass_on(pid_t to_gnt, int sig) {
    if (to_gnt > 0)
        kill(to_gnt, sig);
    else if (child > 0)  /* gnt never said its pid: the bootloader passes on SIGINT and SIGTERM only */
        kill(child, sig == SIGHUP ? SIGTERM : sig);
}

static void forward(int sig, siginfo_t *info, void *context) {
    (void)context;
    if (gnt > 0) {
        /* Ctrl-C and a hang-up reach gnt from the kernel already (the whole process group): pass
         * on only what was sent to this process alone (kill), so gnt sees each signal once. */
        if (info->si_code != SI_KERNEL)
            kill(gnt, sig);
        return;
    }
    /* Before gnt said its pid even the kernel's Ctrl-C may miss it: the process that becomes gnt may
     * not exist yet (the bootloaders between keep it blocked to the end). Sent on when gnt says its
     * pid, unless it waits there already (or to the bundle if gnt never says it). */
    waiting[sig] = 1;
}

/* Read gnt's pid from the pipe (digits, then a newline); 0 when every writer closed it unsaid. */
static pid_t read_gnt_pid(int fd) {
    char text[32];
    size_t have = 0;
    while (have < sizeof text - 1) {
        ssize_t got = read(fd, text + have, sizeof text - 1 - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return 0;
        have += (size_t)got;
        if (memchr(text, '\n', have))
            break;
    }
    text[have] = 0;
    long pid = strtol(text, NULL, 10);
    return pid > 1 ? (pid_t)pid : 0;
}

static int waits_in(pid_t pid, int sig);

static void send_waiting(pid_t to_gnt) {
    for (size_t i = 0; i < sizeof HELD / sizeof *HELD; i++)
        if (waiting[HELD[i]]) {
            waiting[HELD[i]] = 0;
            /* gnt blocks it until its pid is said: one that reached it too (group-wide) waits there */
            if (to_gnt <= 0 || !waits_in(to_gnt, HELD[i]))
                pass_on(to_gnt, HELD[i]);
        }
}

/* The first held stop signal waiting for this process, or 0. */
static int stop_signal_pending(const sigset_t *hold) {
    sigset_t pending;
    sigpending(&pending);
    for (size_t i = 0; i < sizeof HELD / sizeof *HELD; i++)
        if (sigismember(hold, HELD[i]) && sigismember(&pending, HELD[i]))
            return HELD[i];
    return 0;
}

/* Whether `sig` waits, blocked, in process `pid` (its SigPnd or ShdPnd line in /proc). */
static int waits_in(pid_t pid, int sig) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *status = fopen(path, "re");
    int found = 0;
    if (!status)
        return 0;
    while (fgets(line, sizeof line, status))
        if (!strncmp(line, "SigPnd:", 7) || !strncmp(line, "ShdPnd:", 7))
            found |= (strtoull(line + 7, NULL, 16) >> (sig - 1)) & 1;
    fclose(status);
    return found;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void remove_tree(const char *path) {
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static void warn_about_file_capabilities(void) {
    struct capability_header header = {CAPABILITY_VERSION_3, 0};
    struct capability_data data[2];
    if (getuid() == 0 || syscall(SYS_capget, &header, data) != 0 || (data[0].permitted | data[1].permitted) == 0)
        return;
    fprintf(stderr, "gnt: capabilities set on this file (setcap) do not reach gnt, which runs unpacked; "
            "use ping_group_range for ping, or run as root\n");
}

static int fail(const char *what, const char *dir, const char *why) {
    fprintf(stderr, "gnt: cannot %s %s (%s): set TMPDIR to a writable directory on a file system "
            "mounted without noexec, e.g. TMPDIR=/var/tmp\n", what, dir, why);
    return EXIT_ERROR;
}

static int copy_bundle(int from, off_t offset, off_t length, int to) {
    char buffer[1 << 16];
    if (lseek(from, offset, SEEK_SET) != offset)
        return -1;
    while (length > 0) {
        ssize_t got = read(from, buffer, length < (off_t)sizeof buffer ? (size_t)length : sizeof buffer);
        if (got <= 0)
            return -1;
        for (ssize_t done = 0; done < got;) {
            ssize_t put = write(to, buffer + done, (size_t)(got - done));
            if (put < 0)
                return -1;
            done += put;
        }
        length -= got;
    }
    return 0;
}

int main(int argc, char **argv) {
    (void)argc;
    /* Hold the stop signals (those the caller did not block already) from the first instruction:
     * one arriving while the bundle is copied must not leave the copy behind. gnt unblocks them. */
    sigset_t hold, before;
    sigemptyset(&hold);
    sigprocmask(SIG_BLOCK, NULL, &before);
    char held[32] = "";
    int ignored[NSIG] = {0};  /* `nohup` and `cmd &` ignore some: they stay ignored, for gnt too (exec keeps it) */
    for (size_t i = 0; i < sizeof HELD / sizeof *HELD; i++) {
        struct sigaction now;
        ignored[HELD[i]] = sigaction(HELD[i], NULL, &now) == 0 && now.sa_handler == SIG_IGN;
    }
    for (size_t i = 0; i < sizeof HELD / sizeof *HELD; i++)
        if (!sigismember(&before, HELD[i]) && !ignored[HELD[i]]) {
            sigaddset(&hold, HELD[i]);
            snprintf(held + strlen(held), sizeof held - strlen(held), "%s%d", *held ? "," : "", HELD[i]);
        }
    sigprocmask(SIG_BLOCK, &hold, NULL);
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    struct statvfs fs;
    if (statvfs(dir, &fs) != 0)
        return fail("unpack into", dir, strerror(errno));
    if (fs.f_flag & ST_RDONLY)
        return fail("unpack into", dir, "read-only file system");
    if (fs.f_flag & ST_NOEXEC)
        return fail("run programs from", dir, "mounted noexec");
    if (access(dir, W_OK | X_OK) != 0)
        return fail("unpack into", dir, strerror(errno));

    int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (self < 0) {
        fprintf(stderr, "gnt: cannot read its own file /proc/self/exe (%s): is /proc mounted?\n", strerror(errno));
        return EXIT_ERROR;
    }
    unsigned char trailer[16];
    off_t size = lseek(self, 0, SEEK_END);
    if (size < 16 || pread(self, trailer, 16, size - 16) != 16 || memcmp(trailer + 8, MAGIC, 8) != 0) {
        fprintf(stderr, "gnt: this file is damaged (no bundle at its end): copy dist/gnt again\n");
        return EXIT_ERROR;
    }
    uint64_t offset = 0;
    for (int i = 7; i >= 0; i--)
        offset = (offset << 8) | trailer[i];

    char work[4096], path[4096 + 8];
    if (snprintf(work, sizeof work, "%s/gnt-XXXXXX", dir) >= (int)sizeof work)
        return fail("unpack into", dir, "path too long");
    if (!mkdtemp(work))
        return fail("unpack into", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/gnt", work);
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    if (out < 0 || copy_bundle(self, (off_t)offset, size - 16 - (off_t)offset, out) != 0 || close(out) != 0) {
        int err = errno;
        remove_tree(work);
        return fail("unpack into", dir, strerror(err ? err : EIO));
    }
    close(self);
    const char *user_tmpdir = getenv("TMPDIR");
    char *saved = malloc(strlen(user_tmpdir ? user_tmpdir : "") + 2);
    if (!saved) {
        remove_tree(work);
        return fail("unpack into", dir, strerror(ENOMEM));
    }
    /* "+value" when the user set TMPDIR, "-" when not: gnt gives back exactly that */
    sprintf(saved, "%s%s", user_tmpdir ? "+" : "-", user_tmpdir ? user_tmpdir : "");
    if (setenv("_GNT_TMPDIR", saved, 1) != 0 || setenv("TMPDIR", work, 1) != 0) {
        remove_tree(work);
        return fail("unpack into", dir, strerror(errno));
    }

    warn_about_file_capabilities();
    int pid_pipe[2] = {-1, -1};
    char fd_text[16] = "";
    if (pipe(pid_pipe) == 0) {
        for (int i = 0; i < 2; i++)
            if (pid_pipe[i] <= STDERR_FILENO) {  /* a standard stream the shell closed (>&-) stays closed for gnt */
                int moved = fcntl(pid_pipe[i], F_DUPFD, STDERR_FILENO + 1);
                close(pid_pipe[i]);
                pid_pipe[i] = moved;
            }
        fcntl(pid_pipe[0], F_SETFD, FD_CLOEXEC);  /* the write end goes on to gnt */
        snprintf(fd_text, sizeof fd_text, "%d", pid_pipe[1]);
    }
    if (setenv("_GNT_HELD_SIGNALS", held, 1) != 0 || setenv("_GNT_LAUNCHER_FD", fd_text, 1) != 0) {
        remove_tree(work);
        return fail("unpack into", dir, strerror(errno));
    }
    struct sigaction action = {.sa_sigaction = forward, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof HELD / sizeof *HELD; i++)
        if (!ignored[HELD[i]])
            sigaction(HELD[i], &action, NULL);
    int early = stop_signal_pending(&hold);
    if (early) {  /* stopped before gnt started: nothing to run, nothing left behind */
        remove_tree(work);
        if (early == SIGINT)
            (void)!write(STDERR_FILENO, "\n", 1);  /* closes the terminal's ^C echo, as gnt does */
        return 128 + early;
    }
    child = fork();
    if (child == 0) {
        execv(path, argv);
        fprintf(stderr, "gnt: cannot run %s (%s): set TMPDIR to a directory that allows exec\n", path, strerror(errno));
        _exit(EXIT_ERROR);
    }
    sigprocmask(SIG_SETMASK, &before, NULL);  /* this process passes signals on from here */
    if (pid_pipe[1] >= 0)
        close(pid_pipe[1]);
    if (child > 0 && pid_pipe[0] >= 0 && pid_pipe[1] >= 0) {
        pid_t said = read_gnt_pid(pid_pipe[0]);
        sigprocmask(SIG_BLOCK, &hold, NULL);  /* no signal between noting the pid and sending the waiting ones */
        gnt = said;
        send_waiting(said);
        sigprocmask(SIG_SETMASK, &before, NULL);
        close(pid_pipe[0]);
    }
    int status = EXIT_ERROR << 8;
    if (child < 0)
        fprintf(stderr, "gnt: cannot start (%s)\n", strerror(errno));
    else
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
            continue;
    remove_tree(work);
    if (WIFSIGNALED(status)) {  /* die the same way, so the shell reports 128+signal */
        signal(WTERMSIG(status), SIG_DFL);
        raise(WTERMSIG(status));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_ERROR;
}
