/*
 * orion-dm: the few device-mapper and loop operations an OrionOS node needs
 * to read its root image over several servers at once, without udev or
 * libdevmapper (the initramfs has neither).
 *
 *   orion-dm loop FILE             attach FILE read-only, with direct I/O
 *                                  where the file system allows it, to a
 *                                  free loop device; print its path
 *   orion-dm create NAME TABLE     create device NAME from a one-line table
 *                                  "START LENGTH TYPE ARGS...", resume it,
 *                                  make /dev/mapper/NAME; print its path
 *   orion-dm reload NAME TABLE     replace the table of device NAME: the new
 *                                  table is loaded, then swapped in by one
 *                                  resume, with I/O kept queued (no flush)
 *                                  and the file system on it not frozen
 *   orion-dm status NAME           print "START LENGTH TYPE STATUS"
 *   orion-dm table NAME            print the loaded table line
 *   orion-dm message NAME MSG...   send a message to the target at sector 0
 *   orion-dm remove NAME           remove the device and its node
 *
 * Exit status: 0 done, 1 the kernel refused (the reason is printed),
 * 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/dm-ioctl.h>
#include <linux/loop.h>

#define BUFFER_SIZE 16384

static const char *program = "orion-dm";

static int fail(const char *what, const char *name)
{
	fprintf(stderr, "%s: %s %s: %s\n", program, what, name, strerror(errno));
	return 1;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: %s loop FILE | create NAME TABLE | reload NAME TABLE | status NAME |\n"
		"       table NAME | message NAME MSG... | remove NAME\n", program);
	return 2;
}

/* A request buffer: the dm_ioctl header, then room for the payload. */
static struct dm_ioctl *request(void *buffer, const char *name)
{
	struct dm_ioctl *io = buffer;

	memset(buffer, 0, BUFFER_SIZE);
	io->version[0] = DM_VERSION_MAJOR;
	io->version[1] = 0;
	io->version[2] = 0;
	io->data_size = BUFFER_SIZE;
	io->data_start = sizeof(struct dm_ioctl);
	if (name)
		snprintf(io->name, sizeof(io->name), "%s", name);
	return io;
}

static int control(void)
{
	int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT) {
		/* No udev: make the control node from what the kernel says. */
		FILE *misc = fopen("/proc/misc", "r");
		unsigned minor = 0;
		char line[128], dev[64];
		int found = 0;

		while (misc && fgets(line, sizeof(line), misc))
			if (sscanf(line, "%u %63s", &minor, dev) == 2 && strcmp(dev, "device-mapper") == 0) {
				found = 1;
				break;
			}
		if (misc)
			fclose(misc);
		if (!found) {
			errno = ENODEV;
			return -1;
		}
		mkdir("/dev/mapper", 0755);
		if (mknod("/dev/mapper/control", S_IFCHR | 0600, makedev(10, minor)) < 0 && errno != EEXIST)
			return -1;
		fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	}
	return fd;
}

static int dm(int fd, unsigned long cmd, struct dm_ioctl *io, const char *what)
{
	if (ioctl(fd, cmd, io) < 0)
		return fail(what, io->name);
	if (io->flags & DM_BUFFER_FULL_FLAG) {
		errno = ENOBUFS;
		return fail(what, io->name);
	}
	return 0;
}

static int loop_attach(const char *file)
{
	struct loop_config config;
	char path[32];
	int ctl, file_fd, loop_fd, number, tries;

	file_fd = open(file, O_RDONLY | O_CLOEXEC);
	if (file_fd < 0)
		return fail("open", file);
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return fail("open", "/dev/loop-control");
	for (tries = 0; tries < 8; tries++) {
		number = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (number < 0)
			return fail("find a free loop device for", file);
		snprintf(path, sizeof(path), "/dev/loop%d", number);
		loop_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (loop_fd < 0 && errno == ENOENT) {
			/* devtmpfs normally makes it; without it, make it here. */
			if (mknod(path, S_IFBLK | 0600, makedev(7, number)) < 0 && errno != EEXIST)
				return fail("make", path);
			loop_fd = open(path, O_RDONLY | O_CLOEXEC);
		}
		if (loop_fd < 0)
			return fail("open", path);
		memset(&config, 0, sizeof(config));
		config.fd = file_fd;
		config.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_DIRECT_IO;
		snprintf((char *)config.info.lo_file_name, LO_NAME_SIZE, "%s", file);
		if (ioctl(loop_fd, LOOP_CONFIGURE, &config) == 0) {
			printf("%s\n", path);
			return 0;
		}
		close(loop_fd);
		if (errno != EBUSY)
			return fail("attach to a loop device:", file);
		/* Another process took it between the two calls: next one. */
	}
	return fail("attach to a loop device:", file);
}

/* Load a one-line table into the inactive slot of NAME: 0, 1 refused, 2 bad table. */
static int load(int fd, const char *name, const char *table)
{
	char buffer[BUFFER_SIZE], type[DM_MAX_TYPE_NAME];
	struct dm_ioctl *io;
	struct dm_target_spec *spec;
	unsigned long long start, length;
	int consumed = 0;
	size_t room;

	if (sscanf(table, "%llu %llu %15s %n", &start, &length, type, &consumed) != 3 || consumed == 0) {
		fprintf(stderr, "%s: table \"%s\" is not START LENGTH TYPE ARGS\n", program, table);
		return 2;
	}
	io = request(buffer, name);
	io->target_count = 1;
	spec = (struct dm_target_spec *)(buffer + sizeof(struct dm_ioctl));
	spec->sector_start = start;
	spec->length = length;
	snprintf(spec->target_type, sizeof(spec->target_type), "%s", type);
	room = BUFFER_SIZE - sizeof(struct dm_ioctl) - sizeof(struct dm_target_spec);
	if (strlen(table + consumed) + 1 > room) {
		fprintf(stderr, "%s: table of %s is too long\n", program, name);
		return 2;
	}
	strcpy((char *)(spec + 1), table + consumed);
	return dm(fd, DM_TABLE_LOAD, io, "load the table of");
}

static int create(int fd, const char *name, const char *table)
{
	char buffer[BUFFER_SIZE], path[160];
	struct dm_ioctl *io;
	int status;

	io = request(buffer, name);
	if (dm(fd, DM_DEV_CREATE, io, "create"))
		return 1;
	status = load(fd, name, table);
	if (status) {
		io = request(buffer, name);
		ioctl(fd, DM_DEV_REMOVE, io);
		return status;
	}
	io = request(buffer, name);
	if (dm(fd, DM_DEV_SUSPEND, io, "resume"))
		return 1;
	snprintf(path, sizeof(path), "/dev/mapper/%s", name);
	unlink(path);
	if (mknod(path, S_IFBLK | 0600, (dev_t)io->dev) < 0)
		return fail("make", path);
	printf("%s\n", path);
	return 0;
}

static int reload(int fd, const char *name, const char *table)
{
	char buffer[BUFFER_SIZE];
	struct dm_ioctl *io;
	int status = load(fd, name, table);

	if (status)
		return status;
	/*
	 * The resume suspends the device, swaps the tables and resumes it in
	 * one call: nothing runs in between that could need the device (it
	 * may hold the root this program was read from).
	 */
	io = request(buffer, name);
	io->flags |= DM_NOFLUSH_FLAG | DM_SKIP_LOCKFS_FLAG;
	if (dm(fd, DM_DEV_SUSPEND, io, "swap in the new table of")) {
		io = request(buffer, name);
		ioctl(fd, DM_TABLE_CLEAR, io);
		return 1;
	}
	return 0;
}

static int show(int fd, const char *name, int table)
{
	char buffer[BUFFER_SIZE];
	struct dm_ioctl *io = request(buffer, name);
	struct dm_target_spec *spec;
	uint32_t i, offset;

	if (table)
		io->flags |= DM_STATUS_TABLE_FLAG;
	if (dm(fd, DM_TABLE_STATUS, io, table ? "read the table of" : "read the status of"))
		return 1;
	offset = io->data_start;
	for (i = 0; i < io->target_count; i++) {
		spec = (struct dm_target_spec *)(buffer + offset);
		printf("%llu %llu %s %s\n", (unsigned long long)spec->sector_start,
		       (unsigned long long)spec->length, spec->target_type, (char *)(spec + 1));
		if (!spec->next)
			break;
		offset = io->data_start + spec->next;
	}
	return 0;
}

static int message(int fd, const char *name, int argc, char **argv)
{
	char buffer[BUFFER_SIZE];
	struct dm_ioctl *io = request(buffer, name);
	struct dm_target_msg *msg = (struct dm_target_msg *)(buffer + sizeof(struct dm_ioctl));
	size_t used = 0, room = BUFFER_SIZE - sizeof(struct dm_ioctl) - sizeof(struct dm_target_msg);
	int i;

	msg->sector = 0;
	for (i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]);

		if (used + n + 2 > room) {
			fprintf(stderr, "%s: message to %s is too long\n", program, name);
			return 2;
		}
		if (i)
			msg->message[used++] = ' ';
		memcpy(msg->message + used, argv[i], n);
		used += n;
	}
	msg->message[used] = '\0';
	return dm(fd, DM_TARGET_MSG, io, "send a message to");
}

static int remove_device(int fd, const char *name)
{
	char buffer[BUFFER_SIZE], path[160];
	struct dm_ioctl *io = request(buffer, name);

	if (dm(fd, DM_DEV_REMOVE, io, "remove"))
		return 1;
	snprintf(path, sizeof(path), "/dev/mapper/%s", name);
	unlink(path);
	return 0;
}

int main(int argc, char **argv)
{
	int fd;

	if (argc < 3)
		return usage();
	if (strcmp(argv[1], "loop") == 0)
		return argc == 3 ? loop_attach(argv[2]) : usage();
	if (strlen(argv[2]) >= DM_NAME_LEN || strchr(argv[2], '/')) {
		fprintf(stderr, "%s: \"%s\" is not a device name\n", program, argv[2]);
		return 2;
	}
	fd = control();
	if (fd < 0)
		return fail("open", "/dev/mapper/control");
	if (strcmp(argv[1], "create") == 0 && argc == 4)
		return create(fd, argv[2], argv[3]);
	if (strcmp(argv[1], "reload") == 0 && argc == 4)
		return reload(fd, argv[2], argv[3]);
	if (strcmp(argv[1], "status") == 0 && argc == 3)
		return show(fd, argv[2], 0);
	if (strcmp(argv[1], "table") == 0 && argc == 3)
		return show(fd, argv[2], 1);
	if (strcmp(argv[1], "message") == 0 && argc >= 4)
		return message(fd, argv[2], argc - 3, argv + 3);
	if (strcmp(argv[1], "remove") == 0 && argc == 3)
		return remove_device(fd, argv[2]);
	return usage();
}
