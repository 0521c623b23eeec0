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

static pid_t child;

static void forward(int sig, siginfo_t *info, void *context) {
    (void)context;
    /* Ctrl-C and a hang-up reach the whole process group from the kernel already: pass on only
     * what was sent to this process alone (kill), so gnt sees each signal once. */
    if (child <= 0 || info->si_code == SI_KERNEL)
        return;
    /* staticx's bootloader passes on SIGINT and SIGTERM only; a SIGHUP would kill it and leave
     * gnt running: ask gnt to stop with SIGTERM instead. */
    kill(child, sig == SIGHUP ? SIGTERM : sig);
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
    struct sigaction action = {.sa_sigaction = forward, .sa_flags = SA_SIGINFO | SA_RESTART};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    child = fork();
    if (child == 0) {
        execv(path, argv);
        fprintf(stderr, "gnt: cannot run %s (%s): set TMPDIR to a directory that allows exec\n", path, strerror(errno));
        _exit(EXIT_ERROR);
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
