// SPDX-License-Identifier: GPL-2.0
/*
 * vmso module parameters, all of them, and what the rest of the driver
 * reads of them. The README's "Module parameters" table says what each
 * one does; only dma_mode and tso_csum may change at run time.
 */

#include <linux/kernel.h>
#include <linux/moduleparam.h>
#include <linux/string.h>

#include "vmso.h"

/* A parameter that takes one of a list of names; the value is the index */
struct vmso_enum_param {
	int *val;
	const char * const *names;
	unsigned int n;
};

static int vmso_enum_param_set(const char *val, const struct kernel_param *kp)
{
	const struct vmso_enum_param *e = kp->arg;
	int v = __sysfs_match_string(e->names, e->n, val);

	if (v < 0)
		return -EINVAL;
	WRITE_ONCE(*e->val, v);
	return 0;
}

static int vmso_enum_param_get(char *buf, const struct kernel_param *kp)
{
	const struct vmso_enum_param *e = kp->arg;

	return scnprintf(buf, PAGE_SIZE, "%s\n", e->names[READ_ONCE(*e->val)]);
}

static const struct kernel_param_ops vmso_enum_param_ops = {
	.set = vmso_enum_param_set,
	.get = vmso_enum_param_get,
};

/* dma_mode: how TX payload is addressed; read per packet */
enum vmso_dma_mode {
	VMSO_DMA_VIRT,
	VMSO_DMA_PHYS,
};

static const char * const vmso_dma_mode_names[] = {
	[VMSO_DMA_VIRT] = "virt",
	[VMSO_DMA_PHYS] = "phys",
};

static int vmso_dma_mode = VMSO_DMA_VIRT;
static struct vmso_enum_param vmso_dma_mode_param = {
	.val = &vmso_dma_mode,
	.names = vmso_dma_mode_names,
	.n = ARRAY_SIZE(vmso_dma_mode_names),
};
module_param_cb(dma_mode, &vmso_enum_param_ops, &vmso_dma_mode_param, 0644);
MODULE_PARM_DESC(dma_mode,
		 "TX payload addressing: virt (kernel virtual addresses, the device walks the page tables; default) or phys (dma_map_page)");

/* tso: read at probe (features), so it can only be set at load time */
static const char * const vmso_tso_names[] = {
	[VMSO_TSO_DEVICE] = "device",
	[VMSO_TSO_DRIVER] = "driver",
	[VMSO_TSO_OFF] = "off",
};

static int vmso_tso = VMSO_TSO_DEVICE;
static struct vmso_enum_param vmso_tso_param = {
	.val = &vmso_tso,
	.names = vmso_tso_names,
	.n = ARRAY_SIZE(vmso_tso_names),
};
module_param_cb(tso, &vmso_enum_param_ops, &vmso_tso_param, 0444);
MODULE_PARM_DESC(tso,
		 "TCP segmentation: device (the device segments; default), driver (TSO advertised, the driver builds every segment header and posts one specification per superpacket), off (TSO not advertised)");

/* tso_csum: with driver-side TSO, who computes the segments' checksums */
static const char * const vmso_tso_csum_names[] = { "device", "driver" };
static int vmso_tso_csum;	/* 0: device, 1: driver */
static struct vmso_enum_param vmso_tso_csum_param = {
	.val = &vmso_tso_csum,
	.names = vmso_tso_csum_names,
	.n = ARRAY_SIZE(vmso_tso_csum_names),
};
module_param_cb(tso_csum, &vmso_enum_param_ops, &vmso_tso_csum_param, 0644);
MODULE_PARM_DESC(tso_csum,
		 "With tso=driver, who computes the segments' checksums: device (IPCSUM|L4CSUM; default) or driver (in place, no CMD bits). Writable at run time.");

static bool vmso_mq = true;
module_param_named(mq, vmso_mq, bool, 0444);
MODULE_PARM_DESC(mq, "Negotiate MQ (queue pairs, ABI 2.0) when the device offers it (default on); off: queue pair 0 in the ABI 1.x layout");

static unsigned int vmso_max_queues = VMSO_MAX_QUEUES;
module_param_named(max_queues, vmso_max_queues, uint, 0444);
MODULE_PARM_DESC(max_queues, "Most queue pairs (1..16, default 16); the count at probe is min(NUM_QUEUES, online CPUs, max_queues), ethtool -L changes it");

static bool vmso_notify = true;
module_param_named(notify, vmso_notify, bool, 0444);
MODULE_PARM_DESC(notify, "Publish ring tails in a notify block and ring doorbells only when the device is idle (default on)");

static unsigned int vmso_poll_us = 50;
module_param_named(poll_us, vmso_poll_us, uint, 0444);
MODULE_PARM_DESC(poll_us, "Device busy-poll window after its last work, microseconds (0..1000, default 50)");

const char *vmso_dma_mode_name(void)
{
	return vmso_dma_mode_names[READ_ONCE(vmso_dma_mode)];
}

bool vmso_dma_mode_virt(void)
{
	return READ_ONCE(vmso_dma_mode) == VMSO_DMA_VIRT;
}

enum vmso_tso_mode vmso_tso_mode(void)
{
	return vmso_tso;
}

const char *vmso_tso_mode_name(void)
{
	return vmso_tso_names[vmso_tso];
}

bool vmso_tso_csum_driver(void)
{
	return READ_ONCE(vmso_tso_csum);
}

bool vmso_param_mq(void)
{
	return vmso_mq;
}

unsigned int vmso_param_max_queues(void)
{
	return vmso_max_queues;
}

bool vmso_param_notify(void)
{
	return vmso_notify;
}

unsigned int vmso_param_poll_us(void)
{
	return vmso_poll_us;
}
