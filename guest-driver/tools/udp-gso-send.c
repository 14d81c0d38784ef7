// SPDX-License-Identifier: GPL-2.0
/*
 * udp-gso-send: an ordinary UDP socket with UDP_SEGMENT (UDP GSO), so that
 * the stack hands the driver superpackets of many datagrams. With
 * tx-udp-segmentation on, vmso.ko posts each with CMD.USO and the device
 * cuts it; off, the stack segments in software.
 *
 *   udp-gso-send DST PORT [GSO_SIZE [SEND_LEN [COUNT]]]
 *     defaults: 1400 bytes per datagram, 44800 bytes per send (32
 *     datagrams), 200 sends. Prints "udp_gso_sends=N udp_gso_bytes=B".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

int main(int argc, char **argv)
{
	struct sockaddr_in dst = { .sin_family = AF_INET };
	int gso = 1400, len = 32 * 1400, count = 200, fd, i;
	unsigned long long bytes = 0;
	char *buf;

	if (argc < 3) {
		fprintf(stderr, "usage: %s DST PORT [GSO_SIZE [SEND_LEN [COUNT]]]\n",
			argv[0]);
		return 2;
	}
	if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[1]);
		return 2;
	}
	dst.sin_port = htons(atoi(argv[2]));
	if (argc > 3)
		gso = atoi(argv[3]);
	if (argc > 4)
		len = atoi(argv[4]);
	if (argc > 5)
		count = atoi(argv[5]);
	if (gso <= 0 || len <= 0 || len > 65507 || count <= 0) {
		fprintf(stderr, "bad sizes\n");
		return 2;
	}
	buf = malloc(len);
	if (!buf)
		return 1;
	for (i = 0; i < len; i++)
		buf[i] = (char)i;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	if (setsockopt(fd, SOL_UDP, UDP_SEGMENT, &gso, sizeof(gso))) {
		perror("setsockopt UDP_SEGMENT");
		return 1;
	}
	for (i = 0; i < count; i++) {
		ssize_t n = sendto(fd, buf, len, 0, (struct sockaddr *)&dst,
				   sizeof(dst));

		if (n < 0) {
			if (errno == ENOBUFS || errno == EAGAIN) {
				usleep(1000);
				i--;
				continue;
			}
			perror("sendto");
			return 1;
		}
		bytes += n;
	}
	close(fd);
	printf("udp_gso_sends=%d udp_gso_bytes=%llu\n", count, bytes);
	return 0;
}
