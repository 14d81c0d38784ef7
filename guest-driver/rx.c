// SPDX-License-Identifier: GPL-2.0
/*
 * vmso receive path.
 *
 * Every RX slot holds one page-frag buffer of VMSO_RX_FRAG_SIZE bytes: the
 * device writes up to VMSO_RX_BUF_LEN bytes after VMSO_RX_HEADROOM, and the
 * tail leaves room for build_skb()'s skb_shared_info. The first buffer of a
 * frame becomes the skb head; the following buffers of a multi-buffer frame
 * (jumbo frames, coalesced superpackets) become frags, and once the frags
 * are full, skbs chained on the head's frag_list. A frame may be split
 * across two NAPI polls; the partial skb is kept in the ring.
 */

#include <linux/dma-mapping.h>
#include <linux/etherdevice.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/mm.h>
#include <linux/tcp.h>
#include <net/ip6_checksum.h>
#include <net/tcp.h>

#include "vmso.h"

/* Refilled buffers are announced to the device in batches of this many */
#define VMSO_RX_DOORBELL_BATCH	32

/* Frags per skb before chaining on frag_list (lower it to test that path) */
#ifndef VMSO_RX_FRAGS_MAX
#define VMSO_RX_FRAGS_MAX	MAX_SKB_FRAGS
#endif

static void vmso_rx_doorbell(struct vmso_rx_ring *rx)
{
	enum vmso_doorbell db;

	db = vmso_ring_doorbell(rx->qp, false, rx->tail_reg, rx->ntu, rx->mask,
				&rx->tail);
	if (db == VMSO_DOORBELL_NONE)
		return;
	u64_stats_update_begin(&rx->stats.syncp);
	u64_stats_inc(db == VMSO_DOORBELL_RUNG ? &rx->stats.doorbells :
						 &rx->stats.notified);
	u64_stats_update_end(&rx->stats.syncp);
}

/*
 * Posts buffers until the ring is full (one slot stays free). @napi: in
 * the NAPI poll, so the per-CPU NAPI frag cache may be used. Rings RX_TAIL
 * if @force, on allocation failure, or once a batch has accumulated.
 * Returns false if an allocation failed.
 */
static bool vmso_rx_refill(struct vmso_rx_ring *rx, bool napi, bool force)
{
	struct device *dev = &rx->priv->pdev->dev;
	bool ok = true;

	while (rx->ntu - rx->ntc < rx->size - 1) {
		u32 slot = rx->ntu & rx->mask;
		struct vmso_rx_buf *buf = &rx->bufs[slot];
		struct vmso_rx_desc *desc = &rx->desc[slot];
		dma_addr_t dma;
		void *va;

		if (napi)
			va = napi_alloc_frag(VMSO_RX_FRAG_SIZE);
		else
			va = netdev_alloc_frag(VMSO_RX_FRAG_SIZE);
		if (unlikely(!va)) {
			ok = false;
			break;
		}
		dma = dma_map_single(dev, va + VMSO_RX_HEADROOM,
				     VMSO_RX_BUF_LEN, DMA_FROM_DEVICE);
		if (unlikely(dma_mapping_error(dev, dma))) {
			skb_free_frag(va);
			ok = false;
			break;
		}
		buf->va = va;
		buf->dma = dma;

		desc->addr = cpu_to_le64(dma);
		desc->buf_len = cpu_to_le32(VMSO_RX_BUF_LEN);
		desc->len = 0;
		desc->status = 0;	/* no stale DD */
		desc->gso_size = 0;
		desc->gso_segs = 0;
		desc->gso_type = 0;
		desc->hash_type = 0;
		desc->hash = 0;
		desc->rsvd = 0;
		rx->ntu++;
	}

	if (unlikely(!ok)) {
		u64_stats_update_begin(&rx->stats.syncp);
		u64_stats_inc(&rx->stats.alloc_fails);
		u64_stats_update_end(&rx->stats.syncp);
	}
	if (force || !ok || rx->ntu - rx->tail >= VMSO_RX_DOORBELL_BATCH)
		vmso_rx_doorbell(rx);
	return ok;
}

static void vmso_rx_drop_frame(struct vmso_rx_ring *rx)
{
	if (rx->skb)
		dev_kfree_skb_any(rx->skb);
	rx->skb = NULL;
	rx->last = NULL;
}

/* Appends one filled buffer to the frame being assembled */
static void vmso_rx_add_buf(struct vmso_rx_ring *rx, void *va, u32 len)
{
	struct sk_buff *skb = rx->skb, *last = rx->last, *nskb;
	struct page *page;
	u32 off;

	if (!skb) {
		skb = napi_build_skb(va, VMSO_RX_FRAG_SIZE);
		if (unlikely(!skb))
			goto fail;
		skb_reserve(skb, VMSO_RX_HEADROOM);
		__skb_put(skb, len);
		rx->skb = skb;
		rx->last = skb;
		return;
	}

	if (!len) {
		skb_free_frag(va);
		return;
	}

	if (skb_shinfo(last)->nr_frags < VMSO_RX_FRAGS_MAX) {
		page = virt_to_head_page(va);
		off = va + VMSO_RX_HEADROOM - page_address(page);
		skb_add_rx_frag(last, skb_shinfo(last)->nr_frags, page, off,
				len, VMSO_RX_FRAG_SIZE);
		if (last != skb) {
			skb->len += len;
			skb->data_len += len;
			skb->truesize += VMSO_RX_FRAG_SIZE;
		}
		return;
	}

	/* Frags are full: chain a new skb, built on this buffer, on the
	 * head's frag_list.
	 */
	nskb = napi_build_skb(va, VMSO_RX_FRAG_SIZE);
	if (unlikely(!nskb))
		goto fail;
	skb_reserve(nskb, VMSO_RX_HEADROOM);
	__skb_put(nskb, len);
	if (last == skb)
		skb_shinfo(skb)->frag_list = nskb;
	else
		last->next = nskb;
	rx->last = nskb;
	skb->len += len;
	skb->data_len += len;
	skb->truesize += nskb->truesize;
	return;

fail:
	skb_free_frag(va);
	u64_stats_update_begin(&rx->stats.syncp);
	u64_stats_inc(&rx->stats.alloc_fails);
	u64_stats_update_end(&rx->stats.syncp);
	vmso_rx_drop_frame(rx);
	rx->discard = true;
}

/*
 * Makes a coalesced superpacket what tcp_gro_complete() makes of one that
 * software GRO merged: gso_size/segs/type, and CHECKSUM_PARTIAL with the
 * pseudo-header sum in the TCP checksum field, so that a bridge or router
 * that sends it on can have it segmented and checksummed again. Returns
 * false (the frame goes up as one plain verified frame) if the headers are
 * not the ones the device coalesces.
 */
static bool vmso_rx_gro_complete(struct vmso_rx_ring *rx, struct sk_buff *skb)
{
	struct skb_shared_info *shinfo = skb_shinfo(skb);
	u32 gso_type, thoff;
	struct tcphdr *th;

	skb_reset_network_header(skb);
	if (rx->gso_type == VMSO_RX_GSO_TCPV4) {
		const struct iphdr *iph;

		if (skb->protocol != htons(ETH_P_IP) ||
		    !pskb_may_pull(skb, sizeof(*iph)))
			return false;
		iph = ip_hdr(skb);
		thoff = iph->ihl * 4;
		if (iph->protocol != IPPROTO_TCP || thoff < sizeof(*iph) ||
		    !pskb_may_pull(skb, thoff + sizeof(*th)))
			return false;
		iph = ip_hdr(skb);
		skb_set_transport_header(skb, thoff);
		th = tcp_hdr(skb);
		th->check = ~tcp_v4_check(skb->len - thoff, iph->saddr,
					  iph->daddr, 0);
		gso_type = SKB_GSO_TCPV4;
	} else {
		const struct ipv6hdr *ip6h;

		thoff = sizeof(*ip6h);
		if (skb->protocol != htons(ETH_P_IPV6) ||
		    !pskb_may_pull(skb, thoff + sizeof(*th)))
			return false;
		ip6h = ipv6_hdr(skb);
		if (ip6h->nexthdr != IPPROTO_TCP)
			return false;
		skb_set_transport_header(skb, thoff);
		th = tcp_hdr(skb);
		th->check = ~tcp_v6_check(skb->len - thoff, &ip6h->saddr,
					  &ip6h->daddr, 0);
		gso_type = SKB_GSO_TCPV6;
	}
	if (th->cwr)
		gso_type |= SKB_GSO_TCP_ECN;

	skb->ip_summed = CHECKSUM_PARTIAL;
	skb->csum_start = skb_transport_header(skb) - skb->head;
	skb->csum_offset = offsetof(struct tcphdr, check);
	shinfo->gso_size = rx->gso_size;
	shinfo->gso_segs = rx->gso_segs;
	shinfo->gso_type = gso_type;
	return true;
}

/* Hands a complete frame to the stack */
static void vmso_rx_deliver(struct vmso_rx_ring *rx)
{
	struct net_device *netdev = rx->priv->netdev;
	struct sk_buff *skb = rx->skb;
	u16 st = rx->first_status;
	bool csum_ok = false, gso = false, hashed = false;
	unsigned int len = skb->len;

	rx->skb = NULL;
	rx->last = NULL;

	if (unlikely(skb_headlen(skb) < ETH_HLEN)) {
		dev_kfree_skb_any(skb);
		u64_stats_update_begin(&rx->stats.syncp);
		u64_stats_inc(&rx->stats.errors);
		u64_stats_inc(&rx->stats.dropped);
		u64_stats_update_end(&rx->stats.syncp);
		return;
	}

	skb->protocol = eth_type_trans(skb, netdev);

	if ((netdev->features & NETIF_F_RXCSUM) &&
	    (st & VMSO_RX_STS_L4_OK) && !(st & VMSO_RX_STS_CSUM_ERR)) {
		skb->ip_summed = CHECKSUM_UNNECESSARY;
		csum_ok = true;
	}

	/*
	 * A coalesced superpacket goes up as a GSO skb, as software GRO
	 * would have built it (NETIF_F_GRO_HW), so that the stack accepts,
	 * forwards and resegments it. Only checksum-verified ones qualify:
	 * the TCP checksum of a superpacket covers the first segment only.
	 */
	if ((st & VMSO_RX_STS_COALESCED) && csum_ok && rx->gso_size &&
	    rx->gso_segs > 1 &&
	    (rx->gso_type == VMSO_RX_GSO_TCPV4 ||
	     rx->gso_type == VMSO_RX_GSO_TCPV6))
		gso = vmso_rx_gro_complete(rx, skb);

	skb_record_rx_queue(skb, rx->qid);
	/* The device's Toeplitz hash: RPS/RFS and the socket use it as is */
	if (rx->hash_type != VMSO_RX_HASH_NONE &&
	    (netdev->features & NETIF_F_RXHASH)) {
		skb_set_hash(skb, rx->hash,
			     rx->hash_type == VMSO_RX_HASH_L4 ?
			     PKT_HASH_TYPE_L4 : PKT_HASH_TYPE_L3);
		hashed = true;
	}

	u64_stats_update_begin(&rx->stats.syncp);
	u64_stats_inc(&rx->stats.packets);
	u64_stats_add(&rx->stats.bytes, len);
	if (skb->data_len)
		u64_stats_inc(&rx->stats.multi_buf);
	if (skb_has_frag_list(skb))
		u64_stats_inc(&rx->stats.frag_list);
	if (csum_ok)
		u64_stats_inc(&rx->stats.csum_ok);
	if (st & VMSO_RX_STS_CSUM_ERR)
		u64_stats_inc(&rx->stats.csum_err);
	if (gso)
		u64_stats_inc(&rx->stats.coalesced);
	if (hashed)
		u64_stats_inc(&rx->stats.hashed);
	u64_stats_update_end(&rx->stats.syncp);

	napi_gro_receive(&rx->qp->napi, skb);
}

/* Reads completed descriptors; returns the number of frames finished */
static int vmso_rx_clean(struct vmso_rx_ring *rx, int budget)
{
	struct device *dev = &rx->priv->pdev->dev;
	int done = 0;

	while (done < budget && rx->ntc != rx->ntu) {
		u32 slot = rx->ntc & rx->mask;
		struct vmso_rx_desc *desc = &rx->desc[slot];
		struct vmso_rx_buf *buf = &rx->bufs[slot];
		u16 status = le16_to_cpu(READ_ONCE(desc->status));
		u32 len;
		void *va;

		if (!(status & VMSO_RX_STS_DD))
			break;
		/* Read the rest of the descriptor, and the data, after DD */
		dma_rmb();
		len = le32_to_cpu(desc->len);

		dma_unmap_single(dev, buf->dma, VMSO_RX_BUF_LEN,
				 DMA_FROM_DEVICE);
		va = buf->va;
		buf->va = NULL;
		rx->ntc++;

		if (!rx->skb && !rx->discard) {
			/* First buffer of a frame: csum and GSO live here */
			rx->first_status = status;
			rx->gso_size = le16_to_cpu(desc->gso_size);
			rx->gso_segs = le16_to_cpu(desc->gso_segs);
			rx->gso_type = desc->gso_type;
			rx->hash_type = desc->hash_type;
			rx->hash = le32_to_cpu(desc->hash);
		}

		if (unlikely(len > VMSO_RX_BUF_LEN)) {
			/* Device bug: drop the whole frame */
			if (!rx->discard) {
				u64_stats_update_begin(&rx->stats.syncp);
				u64_stats_inc(&rx->stats.errors);
				u64_stats_update_end(&rx->stats.syncp);
			}
			vmso_rx_drop_frame(rx);
			rx->discard = true;
		}

		if (unlikely(rx->discard))
			skb_free_frag(va);
		else
			vmso_rx_add_buf(rx, va, len);

		if (!(status & VMSO_RX_STS_EOP))
			continue;

		done++;
		if (unlikely(rx->discard)) {
			rx->discard = false;
			u64_stats_update_begin(&rx->stats.syncp);
			u64_stats_inc(&rx->stats.dropped);
			u64_stats_update_end(&rx->stats.syncp);
			continue;
		}
		vmso_rx_deliver(rx);
	}
	return done;
}

bool vmso_rx_work_pending(const struct vmso_rx_ring *rx)
{
	const struct vmso_rx_desc *desc = &rx->desc[rx->ntc & rx->mask];

	return rx->ntc != rx->ntu &&
	       (le16_to_cpu(READ_ONCE(desc->status)) & VMSO_RX_STS_DD);
}

/*
 * The RX half of a queue pair's NAPI poll (budget > 0): frames, then
 * refill. Returns the frames finished; *starved is set when the ring has
 * no buffer at all and none could be allocated, so the poll must go on
 * rather than wait for an interrupt that cannot come.
 */
int vmso_rx_poll(struct vmso_rx_ring *rx, int budget, bool *starved)
{
	bool refilled;
	int done;

	done = vmso_rx_clean(rx, budget);
	refilled = vmso_rx_refill(rx, true, false);
	*starved = !refilled && rx->ntu == rx->ntc;
	return done;
}

/* Posts the initial buffers and rings RX_TAIL. The device is enabled. */
void vmso_rx_fill(struct vmso_rx_ring *rx)
{
	if (!vmso_rx_refill(rx, false, true))
		netdev_warn(rx->priv->netdev,
			    "RX ring %u: only %u of %u buffers\n", rx->qid,
			    rx->ntu - rx->ntc, rx->size - 1);
}

/* Allocates the memory of an RX ring of @size (a power of two) slots */
int vmso_rx_mem_alloc(struct vmso_priv *priv, u32 size,
		      struct vmso_rx_mem *m)
{
	return vmso_ring_mem_alloc(priv, size, sizeof(struct vmso_rx_desc),
				   sizeof(struct vmso_rx_buf), &m->ring);
}

/* Frees what vmso_rx_mem_alloc() allocated; @m may be empty */
void vmso_rx_mem_free(struct vmso_priv *priv, struct vmso_rx_mem *m)
{
	vmso_ring_mem_free(priv, sizeof(struct vmso_rx_desc), &m->ring);
}

/*
 * Exchanges the ring's memory with @m and starts the ring empty. The ring
 * must be drained (vmso_rx_drain()), the device reset and the RX NAPI
 * disabled. Field by field like vmso_tx_mem_swap() (see there).
 */
void vmso_rx_mem_swap(struct vmso_rx_ring *rx, struct vmso_rx_mem *m)
{
	struct vmso_rx_mem old = {
		.ring = {
			.desc = rx->desc, .desc_dma = rx->desc_dma,
			.bufs = rx->bufs, .size = rx->size,
		},
	};

	rx->desc = m->ring.desc;
	rx->desc_dma = m->ring.desc_dma;
	rx->bufs = m->ring.bufs;
	rx->size = m->ring.size;
	rx->mask = rx->size ? rx->size - 1 : 0;
	rx->ntu = 0;
	rx->ntc = 0;
	rx->tail = 0;
	rx->skb = NULL;
	rx->last = NULL;
	rx->discard = false;
	*m = old;
}

/* Frees the buffers posted and any partial frame. The device must be reset
 * and the RX NAPI disabled.
 */
void vmso_rx_drain(struct vmso_rx_ring *rx)
{
	struct device *dev = &rx->priv->pdev->dev;

	if (!rx->bufs)
		return;

	vmso_rx_drop_frame(rx);
	rx->discard = false;
	for (; rx->ntc != rx->ntu; rx->ntc++) {
		struct vmso_rx_buf *buf = &rx->bufs[rx->ntc & rx->mask];

		dma_unmap_single(dev, buf->dma, VMSO_RX_BUF_LEN,
				 DMA_FROM_DEVICE);
		skb_free_frag(buf->va);
		buf->va = NULL;
	}
}
