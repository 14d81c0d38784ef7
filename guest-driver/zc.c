// SPDX-License-Identifier: GPL-2.0
/*
 * vmso zero-copy send: /dev/vmsoN. A process hands over a buffer and a
 * header template; the device gathers the payload from the process's own
 * memory by virtual address, walking its page tables (virtual-address DMA
 * from user space). The ioctl ABI is uapi/vmso_zc.h.
 *
 * A submission pins the user buffer's pages (read-only pin, no copy) and
 * posts, per packet, a header descriptor by physical address (the template,
 * fixed up for the packet, in the slot's header buffer) and a payload
 * descriptor by *user* virtual address: CMD.VM, pdbr = __pa(mm->pgd) (with
 * PTI that is the kernel half of the pgd pair, which maps user space too)
 * and the PGMODE of the kernel's paging. All packets of a submission go
 * with one TX_TAIL write. Completions come back from the TX NAPI poll
 * (vmso_zc_tx_done()); the pages are unpinned when the submission's last
 * packet completes, and a completion record is queued for read().
 *
 * Page tables. The device walks the process's page tables asynchronously,
 * so they must not change (or be freed) under it. Every open file
 * registers an mmu interval notifier over the whole address space of the
 * opener's mm:
 *   - an invalidation (munmap, mremap, mprotect, COW, migration, THP
 *     split/collapse, exit) that overlaps a submission in flight waits in
 *     the notifier until the device has completed it (non-blocking callers,
 *     i.e. the OOM reaper, get "retry");
 *   - a submission pins, then re-checks the notifier sequence under the
 *     context lock before posting (mmu_interval_read_begin/_retry), so it
 *     never posts across a concurrent invalidation.
 *
 * IOTLB. The device caches translations per PDBR. Any invalidation marks
 * the context "stale"; the next submission first writes IOTLB_INV = 2
 * (by PDBR) with the mm's PDBR, before its doorbell. A new context starts
 * stale (its pgd may be a recycled one) and the release of a context
 * invalidates too. So between invalidations the device keeps its
 * translations of reused buffers, and no stale entry is ever used.
 *
 * Lifetime. The file holds a reference on the context, each submission in
 * flight another. Closing waits until nothing is in flight. The device
 * node object (struct vmso_zc_dev) outlives the PCI device while files are
 * open: after remove, submissions fail with -ENODEV. An ifdown completes
 * everything still on the ring with -ENETDOWN.
 */

#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/if_vlan.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/poll.h>
#include <linux/rwsem.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/uaccess.h>
#include <net/ip.h>
#include <asm/unaligned.h>

#include "vmso.h"
#include "uapi/vmso_zc.h"

/* The ABI has no implicit padding: the same layout for 32-bit callers */
static_assert(sizeof(struct vmso_zc_info) == 72);
static_assert(sizeof(struct vmso_zc_submit) == 160);
static_assert(offsetof(struct vmso_zc_submit, hdr) == 32);
static_assert(sizeof(struct vmso_zc_completion) == 24);

/* A submission: at most this many bytes (so at most 129 packets) */
#define VMSO_ZC_MAX_SUBMIT	(8U << 20)
/* Per file: submissions in flight plus completions not yet read */
#define VMSO_ZC_MAX_OUTSTANDING	256
/* Descriptors per packet: header + payload */
#define VMSO_ZC_DESCS_PER_PKT	2
/* Attempts to pin without a concurrent invalidation */
#define VMSO_ZC_PIN_TRIES	16
/* Warn when a wait for the device takes this long */
#define VMSO_ZC_WAIT_WARN	(5 * HZ)

enum vmso_zc_stat {
	VMSO_ZC_STAT_SUBMITS,		/* submissions posted */
	VMSO_ZC_STAT_BYTES,		/* payload bytes posted */
	VMSO_ZC_STAT_PACKETS,		/* packets (chains) posted */
	VMSO_ZC_STAT_COMPLETIONS,	/* submissions completed */
	VMSO_ZC_STAT_FAULTS,		/* pin -EFAULT + device PAGE_FAULT */
	VMSO_ZC_STAT_ERRORS,		/* completions with status != 0 */
	VMSO_ZC_STAT_REJECTS,		/* submissions refused (any errno) */
	VMSO_ZC_STAT_RING_FULL,		/* of which -EAGAIN for ring space */
	VMSO_ZC_STAT_RETRIES,		/* pins redone after an invalidation */
	VMSO_ZC_STAT_INVAL_WAITS,	/* invalidations that waited */
	VMSO_ZC_STAT_IOTLB_INV,		/* IOTLB_INV by PDBR written */
	VMSO_ZC_STAT_NUM
};

static const char * const vmso_zc_stat_names[VMSO_ZC_STAT_NUM] = {
	[VMSO_ZC_STAT_SUBMITS] = "zc_submits",
	[VMSO_ZC_STAT_BYTES] = "zc_bytes",
	[VMSO_ZC_STAT_PACKETS] = "zc_packets",
	[VMSO_ZC_STAT_COMPLETIONS] = "zc_completions",
	[VMSO_ZC_STAT_FAULTS] = "zc_faults",
	[VMSO_ZC_STAT_ERRORS] = "zc_errors",
	[VMSO_ZC_STAT_REJECTS] = "zc_rejects",
	[VMSO_ZC_STAT_RING_FULL] = "zc_ring_full",
	[VMSO_ZC_STAT_RETRIES] = "zc_pin_retries",
	[VMSO_ZC_STAT_INVAL_WAITS] = "zc_invalidate_waits",
	[VMSO_ZC_STAT_IOTLB_INV] = "zc_iotlb_invalidations",
};

/* The device node; outlives the PCI device while files are open */
struct vmso_zc_dev {
	struct kref ref;
	struct rw_semaphore lock;	/* protects priv */
	struct vmso_priv *priv;		/* NULL once the device is removed */
	struct miscdevice misc;
	int id;
	char name[16];
	atomic64_t stats[VMSO_ZC_STAT_NUM];
};

/* One open file */
struct vmso_zc_ctx {
	struct kref ref;
	struct vmso_zc_dev *zdev;
	struct mm_struct *mm;		/* mmgrab()ed: its pgd stays */
	u64 pdbr;			/* __pa(mm->pgd) */
	struct mmu_interval_notifier mni;

	spinlock_t lock;		/* everything below; irqsave */
	wait_queue_head_t wq;		/* completions (readers, waiters) */
	struct list_head inflight;	/* posted, not all packets done */
	struct list_head done;		/* completed, record not read */
	u32 n_inflight;
	u32 n_done;
	bool iotlb_stale;		/* translations may have changed */
};

/* One submission */
struct vmso_zc_sub {
	struct list_head node;		/* ctx->inflight, then ctx->done */
	struct vmso_zc_ctx *ctx;
	unsigned long start;		/* [start, end): the user buffer */
	unsigned long end;
	struct page **pages;		/* pinned until the last packet */
	unsigned int npages;
	u32 pkts_left;
	struct vmso_zc_completion rec;
};

/* A parsed template and how the buffer is cut */
struct vmso_zc_plan {
	u8 hdr[VMSO_ZC_HDR_MAX];
	u32 hdr_len;
	u32 l3;			/* offset of the IP header */
	u32 l4;			/* offset of the TCP/UDP header */
	bool v4;
	bool tcp;
	u16 cmd;		/* offload CMD bits of the header descriptor */
	u16 dev_mss;		/* mss field of the header descriptor */
	u32 mss;
	u32 pkt_payload;	/* payload per packet (the last may be less) */
	u32 npkts;
	u32 ids_per_pkt;	/* IPv4 IDs a full packet uses */
};

static DEFINE_IDA(vmso_zc_ida);

static void vmso_zc_stat_add(struct vmso_zc_dev *zdev, enum vmso_zc_stat s,
			     u64 v)
{
	atomic64_add(v, &zdev->stats[s]);
}

int vmso_zc_stat_count(void)
{
	return VMSO_ZC_STAT_NUM;
}

const char *vmso_zc_stat_name(int i)
{
	return vmso_zc_stat_names[i];
}

void vmso_zc_get_stats(const struct vmso_priv *priv, u64 *data)
{
	int i;

	for (i = 0; i < VMSO_ZC_STAT_NUM; i++)
		data[i] = priv->zdev ? atomic64_read(&priv->zdev->stats[i]) : 0;
}

static void vmso_zc_dev_free(struct kref *ref)
{
	struct vmso_zc_dev *zdev = container_of(ref, struct vmso_zc_dev, ref);

	ida_free(&vmso_zc_ida, zdev->id);
	kfree(zdev);
}

static void vmso_zc_ctx_free(struct kref *ref)
{
	struct vmso_zc_ctx *ctx = container_of(ref, struct vmso_zc_ctx, ref);
	struct vmso_zc_sub *sub, *tmp;

	/* Completed, never read; nothing is in flight any more */
	list_for_each_entry_safe(sub, tmp, &ctx->done, node)
		kfree(sub);
	mmdrop(ctx->mm);
	kref_put(&ctx->zdev->ref, vmso_zc_dev_free);
	kfree(ctx);
}

/* Is a submission overlapping [start, end) in flight? */
static bool vmso_zc_busy(struct vmso_zc_ctx *ctx, unsigned long start,
			 unsigned long end)
{
	struct vmso_zc_sub *sub;
	unsigned long flags;
	bool busy = false;

	spin_lock_irqsave(&ctx->lock, flags);
	list_for_each_entry(sub, &ctx->inflight, node) {
		if (sub->start < end && start < sub->end) {
			busy = true;
			break;
		}
	}
	spin_unlock_irqrestore(&ctx->lock, flags);
	return busy;
}

/*
 * Waits until the device has completed every submission overlapping
 * [start, end). The device always completes (or an ifdown does it), so
 * this does not give up; it says so if it takes long.
 */
static void vmso_zc_wait_idle(struct vmso_zc_ctx *ctx, unsigned long start,
			      unsigned long end)
{
	while (!wait_event_timeout(ctx->wq, !vmso_zc_busy(ctx, start, end),
				   VMSO_ZC_WAIT_WARN))
		pr_warn_ratelimited("vmso: %s: still waiting for the device to complete zero-copy sends\n",
				    ctx->zdev->name);
}

/*
 * A page-table change in the opener's mm. Runs before the change: if the
 * device may still be reading through the affected range, wait for it.
 */
static bool vmso_zc_invalidate(struct mmu_interval_notifier *mni,
			       const struct mmu_notifier_range *range,
			       unsigned long cur_seq)
{
	struct vmso_zc_ctx *ctx = container_of(mni, struct vmso_zc_ctx, mni);
	unsigned long flags;
	bool busy = false;
	struct vmso_zc_sub *sub;

	spin_lock_irqsave(&ctx->lock, flags);
	list_for_each_entry(sub, &ctx->inflight, node) {
		if (sub->start < range->end && range->start < sub->end) {
			busy = true;
			break;
		}
	}
	if (busy && !mmu_notifier_range_blockable(range)) {
		spin_unlock_irqrestore(&ctx->lock, flags);
		return false;
	}
	/* Submissions that pinned before this point must pin again */
	mmu_interval_set_seq(mni, cur_seq);
	ctx->iotlb_stale = true;
	spin_unlock_irqrestore(&ctx->lock, flags);

	if (busy) {
		vmso_zc_stat_add(ctx->zdev, VMSO_ZC_STAT_INVAL_WAITS, 1);
		vmso_zc_wait_idle(ctx, range->start, range->end);
	}
	return true;
}

static const struct mmu_interval_notifier_ops vmso_zc_mni_ops = {
	.invalidate = vmso_zc_invalidate,
};

/*
 * The TX completion of one packet of @sub (@len payload bytes): @err is 0,
 * a device error code (> 0), or -errno when the ring was torn down. Runs in
 * the TX NAPI poll, or at ifdown.
 */
void vmso_zc_tx_done(struct vmso_zc_sub *sub, u32 len, int err)
{
	struct vmso_zc_ctx *ctx = sub->ctx;
	struct vmso_zc_dev *zdev = ctx->zdev;
	unsigned long flags;
	s32 status;
	bool last;

	spin_lock_irqsave(&ctx->lock, flags);
	if (!err)
		sub->rec.bytes += len;
	else if (!sub->rec.status)
		sub->rec.status = err;
	last = --sub->pkts_left == 0;
	spin_unlock_irqrestore(&ctx->lock, flags);

	if (err == VMSO_TX_ERR_PAGE_FAULT)
		vmso_zc_stat_add(zdev, VMSO_ZC_STAT_FAULTS, 1);
	if (!last)
		return;

	/* The device is done with the buffer: unpin before anyone can see
	 * the record (and free the submission).
	 */
	unpin_user_pages(sub->pages, sub->npages);
	kfree(sub->pages);
	sub->pages = NULL;

	/* Once on ctx->done, a reader may free it at any time */
	status = sub->rec.status;
	spin_lock_irqsave(&ctx->lock, flags);
	list_move_tail(&sub->node, &ctx->done);
	ctx->n_inflight--;
	ctx->n_done++;
	spin_unlock_irqrestore(&ctx->lock, flags);

	vmso_zc_stat_add(zdev, VMSO_ZC_STAT_COMPLETIONS, 1);
	if (status)
		vmso_zc_stat_add(zdev, VMSO_ZC_STAT_ERRORS, 1);
	/* Readers, pollers, invalidations and release wait here */
	wake_up_all(&ctx->wq);
	kref_put(&ctx->ref, vmso_zc_ctx_free);
}

/*
 * Parses and checks the template, flags and mss, and decides the packets.
 */
static int vmso_zc_plan(const struct vmso_priv *priv,
			const struct vmso_zc_submit *req,
			struct vmso_zc_plan *p)
{
	u32 f = req->flags, seg = f & (VMSO_ZC_F_TSO | VMSO_ZC_F_USO |
				      VMSO_ZC_F_UFO);
	u32 dev = priv->dev_features, mtu = priv->netdev->mtu;
	u32 hl = req->hdr_len, l3, l4, l4_len, cap;
	const u8 *h = req->hdr;
	u16 type;
	u8 proto;

	if (f & ~VMSO_ZC_F_ALL || hweight32(seg) > 1)
		return -EINVAL;
	if (!req->len || req->len > VMSO_ZC_MAX_SUBMIT || !req->mss)
		return -EINVAL;
	if (hl < ETH_HLEN + sizeof(struct iphdr) + sizeof(struct udphdr) ||
	    hl > VMSO_ZC_HDR_MAX)
		return -EINVAL;

	l3 = ETH_HLEN;
	type = get_unaligned_be16(h + 12);
	if (type == ETH_P_8021Q) {
		type = get_unaligned_be16(h + 16);
		l3 += VLAN_HLEN;
	}
	if (type == ETH_P_IP) {
		const struct iphdr *iph = (const void *)(h + l3);

		if (iph->version != 4 || iph->ihl < 5)
			return -EINVAL;
		if (iph->frag_off & htons(IP_MF | IP_OFFSET))
			return -EINVAL;
		if ((seg & VMSO_ZC_F_UFO) && (iph->frag_off & htons(IP_DF)))
			return -EINVAL;
		l4 = l3 + iph->ihl * 4;
		proto = iph->protocol;
		p->v4 = true;
	} else if (type == ETH_P_IPV6) {
		const struct ipv6hdr *ip6h = (const void *)(h + l3);

		if (ip6h->version != 6)
			return -EINVAL;
		l4 = l3 + sizeof(*ip6h);
		proto = ip6h->nexthdr;
		p->v4 = false;
	} else {
		return -EINVAL;
	}

	if (proto == IPPROTO_TCP) {
		const struct tcphdr *th = (const void *)(h + l4);

		if (l4 + sizeof(*th) > hl || th->doff < 5)
			return -EINVAL;
		l4_len = th->doff * 4;
		p->tcp = true;
		if (seg & (VMSO_ZC_F_USO | VMSO_ZC_F_UFO))
			return -EINVAL;
	} else if (proto == IPPROTO_UDP) {
		l4_len = sizeof(struct udphdr);
		p->tcp = false;
		if (seg & VMSO_ZC_F_TSO)
			return -EINVAL;
		if ((seg & VMSO_ZC_F_UFO) && !p->v4)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (l4 + l4_len != hl)
		return -EINVAL;

	/* The device's smallest segment (SMALL_MSS below it) */
	if (seg && req->mss < VMSO_MIN_MSS)
		return -EINVAL;
	/* Every frame must fit the MTU */
	if (seg & VMSO_ZC_F_UFO) {
		if ((min_t(u32, req->mss, mtu - (l4 - l3)) & ~7U) < VMSO_MIN_MSS)
			return -EINVAL;
	} else if (hl - l3 + req->mss > mtu) {
		return -EINVAL;
	}

	/* Offloads the device must offer */
	if (!priv->va_capable)
		return -EOPNOTSUPP;
	if ((seg || (f & VMSO_ZC_F_CSUM)) && !(dev & VMSO_F_CSUM))
		return -EOPNOTSUPP;
	if ((seg & VMSO_ZC_F_TSO) &&
	    !(dev & (p->v4 ? VMSO_F_TSO4 : VMSO_F_TSO6)))
		return -EOPNOTSUPP;
	if (((seg & VMSO_ZC_F_USO) && !(dev & VMSO_F_USO)) ||
	    ((seg & VMSO_ZC_F_UFO) && !(dev & VMSO_F_UFO)))
		return -EOPNOTSUPP;
	/* Without checksum offload only UDP/IPv4 (checksum 0) is possible */
	if (!seg && !(f & VMSO_ZC_F_CSUM) && (p->tcp || !p->v4))
		return -EINVAL;

	memcpy(p->hdr, h, hl);
	p->hdr_len = hl;
	p->l3 = l3;
	p->l4 = l4;
	p->mss = req->mss;
	p->dev_mss = 0;
	/*
	 * User memory can change while the device reads it: SNAPSHOT makes
	 * the device checksum and send one copy, so no frame ever leaves with
	 * checksums that do not match its bytes.
	 */
	p->cmd = VMSO_TX_CMD_SNAPSHOT;
	if (seg || (f & VMSO_ZC_F_CSUM))
		p->cmd |= VMSO_TX_CMD_L4CSUM | (p->v4 ? VMSO_TX_CMD_IPCSUM : 0);

	/* Largest packet: descriptor length, MAX_PKT, the IP length field */
	cap = min_t(u32, VMSO_TX_DESC_MAX_LEN, priv->max_pkt - hl);
	cap = min_t(u32, cap, 0xffff - (p->v4 ? hl - l3 : l4_len));
	if (seg & (VMSO_ZC_F_TSO | VMSO_ZC_F_USO)) {
		p->cmd |= (seg & VMSO_ZC_F_TSO) ? VMSO_TX_CMD_TSO :
						  VMSO_TX_CMD_USO;
		p->dev_mss = req->mss;
		p->pkt_payload = rounddown(cap, req->mss);
		p->ids_per_pkt = p->pkt_payload / req->mss;
	} else if (seg & VMSO_ZC_F_UFO) {
		p->cmd |= VMSO_TX_CMD_UFO;
		p->dev_mss = req->mss;
		p->pkt_payload = cap;
		p->ids_per_pkt = 1;
	} else {
		p->pkt_payload = req->mss;
		p->ids_per_pkt = 1;
	}
	p->npkts = DIV_ROUND_UP_ULL(req->len, p->pkt_payload);
	if (p->npkts * VMSO_ZC_DESCS_PER_PKT > VMSO_TX_RING_DEFAULT / 2)
		return -EMSGSIZE;
	return 0;
}

/*
 * Posts every packet of @sub with one doorbell. Caller holds ctx->lock
 * (IRQs off) and has pinned the buffer with no invalidation since.
 */
static int vmso_zc_post(struct vmso_priv *priv, struct vmso_zc_ctx *ctx,
			struct vmso_zc_sub *sub, const struct vmso_zc_plan *p,
			unsigned long len)
{
	struct netdev_queue *txq = netdev_get_tx_queue(priv->netdev, 0);
	struct vmso_tx_ring *tx = &priv->qp[0].tx;
	const struct vmso_hdr_tmpl t = {
		.hdr = p->hdr,
		.len = p->hdr_len,
		.l3 = p->l3,
		.l4 = p->l4,
		.v4 = p->v4,
		.tcp = p->tcp,
	};
	u32 descs = p->npkts * VMSO_ZC_DESCS_PER_PKT, idx, i;
	unsigned long off = 0;
	int err = 0;

	if (ctx->n_inflight + ctx->n_done >= VMSO_ZC_MAX_OUTSTANDING)
		return -EAGAIN;

	__netif_tx_lock(txq, smp_processor_id());
	if (!READ_ONCE(priv->up)) {
		err = -ENETDOWN;
		goto out;
	}
	/* Never fits a ring made small with ethtool -G */
	if (descs + tx->stop_thresh > tx->size - 1) {
		err = -EMSGSIZE;
		goto out;
	}
	/* Leave the stack room for its largest skb */
	if (vmso_tx_unused(tx) < descs + tx->stop_thresh) {
		vmso_zc_stat_add(ctx->zdev, VMSO_ZC_STAT_RING_FULL, 1);
		err = -EAGAIN;
		goto out;
	}

	if (ctx->iotlb_stale) {
		/* MMIO writes are ordered: this lands before the doorbell */
		vmso_iotlb_inv_pdbr(priv, ctx->pdbr);
		ctx->iotlb_stale = false;
		vmso_zc_stat_add(ctx->zdev, VMSO_ZC_STAT_IOTLB_INV, 1);
	}

	idx = tx->ntu;
	for (i = 0; i < p->npkts; i++) {
		u32 n = min_t(unsigned long, p->pkt_payload, len - off);
		u32 slot = idx & tx->mask, hoff = slot * VMSO_TX_HDR_SIZE;
		struct vmso_tx_buf *buf = &tx->bufs[slot];
		const struct vmso_seg seg = {
			.len = n,
			.seq_off = off,
			.id_off = i * p->ids_per_pkt,
			.first = i == 0,
			.last = i + 1 == p->npkts,
			/* IPCSUM unset (UDP frames without offload): the driver writes it */
			.ip_csum = !(p->cmd & VMSO_TX_CMD_IPCSUM),
			/* computed by the device, or none */
			.clear_l4_csum = true,
		};

		vmso_seg_hdr(tx->hdr + hoff, &t, &seg);
		vmso_tx_put_desc(tx, idx++, tx->hdr_dma + hoff, 0, p->hdr_len,
				 p->dev_mss, p->cmd);
		vmso_tx_put_desc(tx, idx++, sub->start + off, ctx->pdbr, n, 0,
				 priv->va_cmd | VMSO_TX_CMD_EOP);
		buf->skb = NULL;
		buf->zc = sub;
		buf->zc_len = n;
		buf->nr_descs = VMSO_ZC_DESCS_PER_PKT;
		buf->virt = 0;	/* no physical fallback for user memory */
		off += n;
	}

	sub->pkts_left = p->npkts;
	sub->rec.packets = p->npkts;
	list_add_tail(&sub->node, &ctx->inflight);
	ctx->n_inflight++;
	kref_get(&ctx->ref);

	/* Pairs with smp_load_acquire() in vmso_tx_clean() */
	smp_store_release(&tx->ntu, idx);
	vmso_tx_doorbell(tx);
	vmso_tx_maybe_stop(tx, txq);
out:
	__netif_tx_unlock(txq);
	return err;
}

static long vmso_zc_submit(struct vmso_zc_ctx *ctx,
			   struct vmso_zc_submit __user *ureq)
{
	struct vmso_zc_dev *zdev = ctx->zdev;
	struct vmso_zc_submit *req;
	struct vmso_zc_plan *plan;
	struct vmso_zc_sub *sub = NULL;
	struct vmso_priv *priv;
	unsigned long first, flags, seq;
	unsigned int npages = 0, tries;
	long ret;
	int pinned;

	if (current->mm != ctx->mm)
		return -EPERM;

	req = kmalloc(sizeof(*req) + sizeof(*plan), GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	plan = (struct vmso_zc_plan *)(req + 1);
	if (copy_from_user(req, ureq, sizeof(*req))) {
		ret = -EFAULT;
		goto out_free;
	}

	down_read(&zdev->lock);
	priv = zdev->priv;
	if (!priv) {
		ret = -ENODEV;
		goto out_unlock;
	}
	ret = vmso_zc_plan(priv, req, plan);
	if (ret)
		goto out_unlock;
	if (req->buf + req->len < req->buf) {
		ret = -EFAULT;
		goto out_unlock;
	}

	first = req->buf & PAGE_MASK;
	npages = (PAGE_ALIGN(req->buf + req->len) - first) >> PAGE_SHIFT;
	sub = kzalloc(sizeof(*sub), GFP_KERNEL);
	if (sub)
		sub->pages = kmalloc_array(npages, sizeof(*sub->pages),
					   GFP_KERNEL);
	if (!sub || !sub->pages) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	sub->ctx = ctx;
	sub->start = req->buf;
	sub->end = req->buf + req->len;
	sub->npages = npages;
	sub->rec.cookie = req->cookie;

	for (tries = 0; ; tries++) {
		if (tries == VMSO_ZC_PIN_TRIES) {
			ret = -EAGAIN;
			goto out_unlock;
		}
		seq = mmu_interval_read_begin(&ctx->mni);
		/* Read-only pin: the pages cannot be freed or migrated */
		pinned = pin_user_pages_fast(first, npages, 0, sub->pages);
		if (pinned != npages) {
			if (pinned > 0)
				unpin_user_pages(sub->pages, pinned);
			vmso_zc_stat_add(zdev, VMSO_ZC_STAT_FAULTS, 1);
			ret = pinned < 0 ? pinned : -EFAULT;
			goto out_unlock;
		}
		spin_lock_irqsave(&ctx->lock, flags);
		if (!mmu_interval_read_retry(&ctx->mni, seq))
			break;	/* no invalidation since the pin: keep lock */
		spin_unlock_irqrestore(&ctx->lock, flags);
		unpin_user_pages(sub->pages, npages);
		vmso_zc_stat_add(zdev, VMSO_ZC_STAT_RETRIES, 1);
	}

	ret = vmso_zc_post(priv, ctx, sub, plan, req->len);
	spin_unlock_irqrestore(&ctx->lock, flags);
	if (ret) {
		unpin_user_pages(sub->pages, npages);
		goto out_unlock;
	}
	vmso_zc_stat_add(zdev, VMSO_ZC_STAT_SUBMITS, 1);
	vmso_zc_stat_add(zdev, VMSO_ZC_STAT_BYTES, req->len);
	vmso_zc_stat_add(zdev, VMSO_ZC_STAT_PACKETS, plan->npkts);
	ret = plan->npkts;
	sub = NULL;	/* owned by the ring now */

out_unlock:
	up_read(&zdev->lock);
	if (ret < 0)
		vmso_zc_stat_add(zdev, VMSO_ZC_STAT_REJECTS, 1);
	if (sub) {
		kfree(sub->pages);
		kfree(sub);
	}
out_free:
	kfree(req);
	return ret;
}

static long vmso_zc_get_info(struct vmso_zc_ctx *ctx,
			     struct vmso_zc_info __user *uinfo)
{
	struct vmso_zc_dev *zdev = ctx->zdev;
	struct vmso_zc_info info = { .abi_version = VMSO_ZC_ABI_VERSION };
	struct vmso_priv *priv;
	u32 dev;

	down_read(&zdev->lock);
	priv = zdev->priv;
	if (!priv) {
		up_read(&zdev->lock);
		return -ENODEV;
	}
	dev = priv->dev_features;
	info.ifindex = priv->netdev->ifindex;
	strscpy(info.ifname, netdev_name(priv->netdev), sizeof(info.ifname));
	memcpy(info.mac, priv->netdev->dev_addr, ETH_ALEN);
	info.pgmode = (priv->va_cmd & VMSO_TX_CMD_PGMODE_MASK) >>
		      VMSO_TX_CMD_PGMODE_SHIFT;
	info.mtu = priv->netdev->mtu;
	if (priv->va_capable && (dev & VMSO_F_CSUM)) {
		info.flags = VMSO_ZC_F_CSUM;
		if (dev & (VMSO_F_TSO4 | VMSO_F_TSO6))
			info.flags |= VMSO_ZC_F_TSO;
		if (dev & VMSO_F_USO)
			info.flags |= VMSO_ZC_F_USO;
		if (dev & VMSO_F_UFO)
			info.flags |= VMSO_ZC_F_UFO;
	}
	info.max_submit = VMSO_ZC_MAX_SUBMIT;
	info.max_outstanding = VMSO_ZC_MAX_OUTSTANDING;
	info.max_pkt_payload = min_t(u32, VMSO_TX_DESC_MAX_LEN,
				     priv->max_pkt);
	info.tx_ring = priv->tx_pending;
	up_read(&zdev->lock);

	return copy_to_user(uinfo, &info, sizeof(info)) ? -EFAULT : 0;
}

static long vmso_zc_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	struct vmso_zc_ctx *ctx = file->private_data;

	switch (cmd) {
	case VMSO_ZC_IOC_SUBMIT:
		return vmso_zc_submit(ctx, (void __user *)arg);
	case VMSO_ZC_IOC_INFO:
		return vmso_zc_get_info(ctx, (void __user *)arg);
	default:
		return -ENOTTY;
	}
}

/* Takes the oldest completion record, or NULL */
static struct vmso_zc_sub *vmso_zc_pop(struct vmso_zc_ctx *ctx, u32 *inflight)
{
	struct vmso_zc_sub *sub;
	unsigned long flags;

	spin_lock_irqsave(&ctx->lock, flags);
	sub = list_first_entry_or_null(&ctx->done, struct vmso_zc_sub, node);
	if (sub) {
		list_del(&sub->node);
		ctx->n_done--;
	}
	*inflight = ctx->n_inflight;
	spin_unlock_irqrestore(&ctx->lock, flags);
	return sub;
}

static void vmso_zc_unpop(struct vmso_zc_ctx *ctx, struct vmso_zc_sub *sub)
{
	unsigned long flags;

	spin_lock_irqsave(&ctx->lock, flags);
	list_add(&sub->node, &ctx->done);
	ctx->n_done++;
	spin_unlock_irqrestore(&ctx->lock, flags);
}

static bool vmso_zc_readable(struct vmso_zc_ctx *ctx)
{
	return READ_ONCE(ctx->n_done) || !READ_ONCE(ctx->n_inflight);
}

static ssize_t vmso_zc_read(struct file *file, char __user *buf,
			    size_t count, loff_t *ppos)
{
	struct vmso_zc_ctx *ctx = file->private_data;
	const size_t rsz = sizeof(struct vmso_zc_completion);
	struct vmso_zc_sub *sub;
	size_t done = 0;
	u32 inflight;
	int err;

	if (count < rsz)
		return -EINVAL;

	while (done + rsz <= count) {
		sub = vmso_zc_pop(ctx, &inflight);
		if (!sub) {
			if (done || !inflight)
				break;
			if (file->f_flags & O_NONBLOCK)
				return -EAGAIN;
			err = wait_event_interruptible(ctx->wq,
						       vmso_zc_readable(ctx));
			if (err)
				return err;
			continue;
		}
		if (copy_to_user(buf + done, &sub->rec, rsz)) {
			vmso_zc_unpop(ctx, sub);
			return done ? done : -EFAULT;
		}
		kfree(sub);
		done += rsz;
	}
	return done;
}

static __poll_t vmso_zc_poll(struct file *file, poll_table *wait)
{
	struct vmso_zc_ctx *ctx = file->private_data;
	unsigned long flags;
	__poll_t mask = 0;

	poll_wait(file, &ctx->wq, wait);
	spin_lock_irqsave(&ctx->lock, flags);
	if (ctx->n_done)
		mask |= EPOLLIN | EPOLLRDNORM;
	if (ctx->n_inflight + ctx->n_done < VMSO_ZC_MAX_OUTSTANDING)
		mask |= EPOLLOUT | EPOLLWRNORM;
	spin_unlock_irqrestore(&ctx->lock, flags);
	return mask;
}

static int vmso_zc_open(struct inode *inode, struct file *file)
{
	/* misc_open() set private_data and holds misc_mtx: zdev is alive */
	struct miscdevice *misc = file->private_data;
	struct vmso_zc_dev *zdev = container_of(misc, struct vmso_zc_dev, misc);
	struct vmso_zc_ctx *ctx;
	int err;

	/* The template is a whole frame: as powerful as a raw socket */
	if (!capable(CAP_NET_RAW))
		return -EPERM;
	if (!current->mm)
		return -EINVAL;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	kref_init(&ctx->ref);
	spin_lock_init(&ctx->lock);
	init_waitqueue_head(&ctx->wq);
	INIT_LIST_HEAD(&ctx->inflight);
	INIT_LIST_HEAD(&ctx->done);
	ctx->iotlb_stale = true;	/* the pgd may be a recycled one */
	ctx->mm = current->mm;
	mmgrab(ctx->mm);
	/* With PTI, mm->pgd is the kernel copy, which maps user space too */
	ctx->pdbr = __pa(ctx->mm->pgd);

	err = mmu_interval_notifier_insert(&ctx->mni, ctx->mm, 0, ULONG_MAX,
					   &vmso_zc_mni_ops);
	if (err) {
		mmdrop(ctx->mm);
		kfree(ctx);
		return err;
	}
	kref_get(&zdev->ref);
	ctx->zdev = zdev;
	file->private_data = ctx;
	return nonseekable_open(inode, file);
}

static int vmso_zc_release(struct inode *inode, struct file *file)
{
	struct vmso_zc_ctx *ctx = file->private_data;
	struct vmso_zc_dev *zdev = ctx->zdev;

	/* No ioctl runs any more (we hold the last file reference) */
	vmso_zc_wait_idle(ctx, 0, ULONG_MAX);
	mmu_interval_notifier_remove(&ctx->mni);

	/* The pgd may be reused by another mm: forget its translations */
	down_read(&zdev->lock);
	if (zdev->priv && zdev->priv->va_capable) {
		vmso_iotlb_inv_pdbr(zdev->priv, ctx->pdbr);
		vmso_zc_stat_add(zdev, VMSO_ZC_STAT_IOTLB_INV, 1);
	}
	up_read(&zdev->lock);

	kref_put(&ctx->ref, vmso_zc_ctx_free);
	return 0;
}

static const struct file_operations vmso_zc_fops = {
	.owner		= THIS_MODULE,
	.open		= vmso_zc_open,
	.release	= vmso_zc_release,
	.read		= vmso_zc_read,
	.poll		= vmso_zc_poll,
	.unlocked_ioctl	= vmso_zc_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= no_llseek,
};

int vmso_zc_register(struct vmso_priv *priv)
{
	struct vmso_zc_dev *zdev;
	int err, i;

	zdev = kzalloc(sizeof(*zdev), GFP_KERNEL);
	if (!zdev)
		return -ENOMEM;
	zdev->id = ida_alloc(&vmso_zc_ida, GFP_KERNEL);
	if (zdev->id < 0) {
		err = zdev->id;
		kfree(zdev);
		return err;
	}
	kref_init(&zdev->ref);
	init_rwsem(&zdev->lock);
	zdev->priv = priv;
	for (i = 0; i < VMSO_ZC_STAT_NUM; i++)
		atomic64_set(&zdev->stats[i], 0);
	snprintf(zdev->name, sizeof(zdev->name), "vmso%d", zdev->id);
	zdev->misc.minor = MISC_DYNAMIC_MINOR;
	zdev->misc.name = zdev->name;
	zdev->misc.fops = &vmso_zc_fops;
	zdev->misc.mode = 0600;
	zdev->misc.parent = &priv->pdev->dev;

	err = misc_register(&zdev->misc);
	if (err) {
		netdev_warn(priv->netdev, "no zero-copy device: misc_register: %d\n",
			    err);
		kref_put(&zdev->ref, vmso_zc_dev_free);
		return err;
	}
	priv->zdev = zdev;
	netdev_info(priv->netdev, "zero-copy sends through /dev/%s%s\n",
		    zdev->name, priv->va_capable ? "" :
		    " (unusable: the device cannot walk this kernel's page tables)");
	return 0;
}

/*
 * The PCI device goes: no new files, no new submissions. Those in flight
 * complete when the netdev goes down (unregister_netdev(), right after).
 */
void vmso_zc_unregister(struct vmso_priv *priv)
{
	struct vmso_zc_dev *zdev = priv->zdev;

	if (!zdev)
		return;
	misc_deregister(&zdev->misc);
	down_write(&zdev->lock);
	zdev->priv = NULL;
	up_write(&zdev->lock);
}

/* After unregister_netdev(): ethtool can no longer read the counters */
void vmso_zc_put(struct vmso_priv *priv)
{
	struct vmso_zc_dev *zdev = priv->zdev;

	if (!zdev)
		return;
	priv->zdev = NULL;
	kref_put(&zdev->ref, vmso_zc_dev_free);
}
