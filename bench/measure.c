/*
 * measure OUT COMMAND [ARGS...]: run COMMAND, wait for it with wait4(2), write
 * "<exit code> <peak RSS KiB> <user s> <system s>" to the file OUT, exit with its code.
 *
 * Why not os.wait4 in bench/run.py directly: Linux carries a process's peak RSS over
 * exec(2), and a child forked (or vforked) from the bench's Python process starts with
 * that process's peak, some 200 MB of emulator and seeded registry. Forked from this
 * small program instead, the command's ru_maxrss is its own (plus at most this
 * program's ~1 MB).
 *
 * Built by bench/run.py with the C compiler the Rust toolchain links with (cc).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s OUT COMMAND [ARGS...]\n", argv[0]);
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        execvp(argv[2], &argv[2]);
        perror(argv[2]);
        _exit(127);
    }
    int status = 0;
    struct rusage usage;
    pid_t done;
    do {
        done = wait4(pid, &status, 0, &usage);
    } while (done < 0 && errno == EINTR);
    if (done < 0) {
        perror("wait4");
        return 2;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    FILE *out = fopen(argv[1], "w");
    if (out == NULL) {
        perror(argv[1]);
        return 2;
    }
    fprintf(out, "%d %ld %ld.%06ld %ld.%06ld\n", code, usage.ru_maxrss,
            (long)usage.ru_utime.tv_sec, (long)usage.ru_utime.tv_usec,
            (long)usage.ru_stime.tv_sec, (long)usage.ru_stime.tv_usec);
    fclose(out);
    return code;
}
