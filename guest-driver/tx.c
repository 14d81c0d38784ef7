// SPDX-License-Identifier: GPL-2.0
/*
 * vmso transmit path.
 *
 * A packet is a chain of descriptors (docs/abi.md, "TX descriptor"):
 *
 *   slot 0   the protocol headers, copied into this slot's coherent header
 *            buffer and posted by *physical* address. It carries the offload
 *            CMD bits and the MSS, which the device reads from the first
 *            descriptor only.
 *   slot 1   the rest of the skb's linear part, if any
 *   slot 2.. one descriptor per non-empty frag
 *
 * The payload slots (1..) are posted either by kernel virtual address with
 * CMD.VM and the kernel PDBR, so that the device walks the page tables to
 * find the pages (dma_mode=virt, virtual-address DMA), or by DMA address from
 * dma_map_single()/skb_frag_dma_map() (dma_mode=phys, the usual way). Both
 * ways the skb is held until the device has written DD into the chain.
 *
 * A VA chain that completes with PAGE_FAULT is posted again once, in
 * physical mode, from the TX NAPI poll.
 *
 * Driver-side TSO (tso=driver): the stack
 * still hands over 64 KiB TSO superpackets, but the device's TSO is not
 * used. For each segment the driver writes the headers (sequence number,
 * IPv4 ID and total length or IPv6 payload length, FIN/PSH on the last
 * segment only, CWR on the first only) into the header buffer of the slot
 * its header descriptor takes (the header pool), then posts the segment's
 * payload slices of the linear part and frags, by VA or DMA address, and
 * ends the segment with EOP. The whole superpacket, one chain per segment,
 * is one "specification" (headers plus payload slices) published with one
 * TX_TAIL write. The payload is
 * never copied. Checksums: IPCSUM | L4CSUM on each segment (the device
 * computes them), or with tso_csum=driver (or without TX checksum offload)
 * the driver computes them over the payload in place and sets no CMD bit.
 *
 * Each queue pair has its own ring; the stack picks the queue (XPS maps a
 * CPU to the pair whose vector it serves). Zero-copy send submissions
 * (zc.c) post their own units on queue pair 0's ring; the completion path
 * hands them back to zc.c.
 */

#include <linux/dma-mapping.h>
#include <linux/highmem.h>
#include <linux/if_vlan.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/log2.h>
#include <linux/string.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <net/checksum.h>
#include <net/ip.h>
#include <net/ip6_checksum.h>

#include "vmso.h"

bool vmso_tx_use_va(const struct vmso_priv *priv)
{
	return priv->va_capable && vmso_dma_mode_virt();
}

/* What vmso_tx_prep() decided about one skb */
struct vmso_tx_pkt {
	struct sk_buff *skb;
	u32 hdr_len;	/* bytes copied into the header buffer */
	u16 cmd;	/* offload CMD bits of the first descriptor */
	u16 mss;
	u16 descs;	/* descriptors the unit takes */
	u16 nseg;	/* driver-side TSO: segments */
	bool virt;	/* payload posted by kernel virtual address */
	bool drv_tso;	/* segmented by the driver */
	bool drv_csum;	/* driver-side TSO: checksums computed here */
};

u32 vmso_tx_unused(const struct vmso_tx_ring *tx)
{
	return tx->size - 1 - (READ_ONCE(tx->ntu) - READ_ONCE(tx->ntc));
}

/*
 * Walks the payload of an skb (after the headers) as pieces: the rest of
 * the linear part, then each frag.
 */
struct vmso_tx_cursor {
	const struct sk_buff *skb;
	int piece;	/* -1: linear part, else frag index */
	u32 off;	/* offset in the piece */
	u32 len;	/* length of the piece */
};

static void vmso_tx_cursor_init(struct vmso_tx_cursor *c,
				const struct sk_buff *skb, u32 hdr_len)
{
	c->skb = skb;
	c->piece = -1;
	c->off = hdr_len;
	c->len = skb_headlen(skb);
}

/*
 * Takes the next slice of at most @max bytes; returns its length (0 at the
 * end). *kva is its kernel address; *piece is -1 for linear data, else the
 * frag index, with *off the slice's offset in that frag.
 */
static u32 vmso_tx_cursor_next(struct vmso_tx_cursor *c, u32 max,
			       const void **kva, int *piece, u32 *off)
{
	const struct skb_shared_info *shinfo = skb_shinfo(c->skb);
	u32 n;

	while (c->off >= c->len) {
		if (c->piece + 1 >= shinfo->nr_frags)
			return 0;
		c->piece++;
		c->off = 0;
		c->len = skb_frag_size(&shinfo->frags[c->piece]);
	}
	n = min(max, c->len - c->off);
	*piece = c->piece;
	*off = c->off;
	if (c->piece < 0)
		*kva = c->skb->data + c->off;
	else
		*kva = skb_frag_address(&shinfo->frags[c->piece]) + c->off;
	c->off += n;
	return n;
}

/* Driver-side TSO: descriptors of a superpacket, headers plus slices */
static u32 vmso_tx_drv_tso_descs(const struct sk_buff *skb, u32 hdr_len,
				 u32 mss, u32 nseg)
{
	struct vmso_tx_cursor c;
	u32 descs = nseg, i, left, n, off;
	const void *kva;
	int piece;

	vmso_tx_cursor_init(&c, skb, hdr_len);
	for (i = 0; i < nseg; i++) {
		left = min(mss, skb->len - hdr_len - i * mss);
		while (left) {
			n = vmso_tx_cursor_next(&c, left, &kva, &piece, &off);
			if (!n)
				return U32_MAX;	/* inconsistent skb */
			descs++;
			left -= n;
		}
	}
	return descs;
}

static int vmso_tx_pull(struct sk_buff *skb, u32 len)
{
	if (likely(len <= skb_headlen(skb)))
		return 0;
	return pskb_may_pull(skb, len) ? 0 : -ENOMEM;
}

/*
 * Length of the Ethernet + IP + TCP/UDP headers of a CHECKSUM_PARTIAL skb,
 * or 0 if the checksum is not a TCP or UDP one the device can insert.
 * vmso_features_check() has already checked the IP layer.
 */
static u32 vmso_tx_l4_hdr_len(struct sk_buff *skb)
{
	u32 l4 = skb_checksum_start_offset(skb);

	if (l4 != skb_transport_offset(skb))
		return 0;
	switch (skb->csum_offset) {
	case offsetof(struct tcphdr, check):
		if (vmso_tx_pull(skb, l4 + sizeof(struct tcphdr)))
			return 0;
		return l4 + tcp_hdrlen(skb);
	case offsetof(struct udphdr, check):
		return l4 + sizeof(struct udphdr);
	default:
		return 0;
	}
}

/*
 * Driver-side TSO: the unit is one chain per segment. The checksums are left to
 * the device unless tso_csum=driver or the netdev has no TX checksum
 * offload for this protocol.
 */
static int vmso_tx_prep_drv_tso(struct vmso_tx_ring *tx, struct sk_buff *skb,
				struct vmso_tx_pkt *pkt, u32 hdr_len, bool virt)
{
	netdev_features_t f = tx->priv->netdev->features;
	bool v4 = skb_shinfo(skb)->gso_type & SKB_GSO_TCPV4;
	u32 descs, nseg, i;

	if (vmso_tx_pull(skb, hdr_len))
		return -ENOMEM;
	if (unlikely(skb->len <= hdr_len))
		return -EINVAL;
	nseg = DIV_ROUND_UP(skb->len - hdr_len, pkt->mss);
	if (unlikely(nseg > VMSO_DRV_TSO_MAX_SEGS))
		return -EMSGSIZE;	/* gso_max_segs prevents it */

	for (i = 0; i < skb_shinfo(skb)->nr_frags; i++)
		if (PageHighMem(skb_frag_page(&skb_shinfo(skb)->frags[i])))
			virt = false;

	descs = vmso_tx_drv_tso_descs(skb, hdr_len, pkt->mss, nseg);
	if (unlikely(descs > VMSO_TX_DESCS_MAX))
		return -EINVAL;

	pkt->hdr_len = hdr_len;
	pkt->descs = descs;
	pkt->nseg = nseg;
	pkt->virt = virt;
	pkt->drv_tso = true;
	pkt->drv_csum = vmso_tso_csum_driver() ||
			!(f & (v4 ? NETIF_F_IP_CSUM : NETIF_F_IPV6_CSUM));
	if (pkt->drv_csum)
		pkt->cmd = 0;
	else
		pkt->cmd = VMSO_TX_CMD_L4CSUM | (v4 ? VMSO_TX_CMD_IPCSUM : 0);
	return 0;
}

static int vmso_tx_prep_descs(struct vmso_tx_ring *tx, struct sk_buff *skb,
			      struct vmso_tx_pkt *pkt, u32 hdr_len, bool virt);

/*
 * UDP segmentation (NETIF_F_GSO_UDP_L4): the device cuts the payload into
 * gso_size-byte datagrams (CMD.USO) and fills in every datagram's UDP
 * length, IPv4 total length, ID and checksums. This is the device's
 * segmentation whatever tso= says: driver-side TSO is TCP only.
 */
static int vmso_tx_prep_uso(struct vmso_tx_ring *tx, struct sk_buff *skb,
			    struct vmso_tx_pkt *pkt, bool virt)
{
	u32 hdr_len = skb_transport_offset(skb) + sizeof(struct udphdr);

	if (unlikely(!(tx->priv->dev_features & VMSO_F_USO)))
		return -EPROTONOSUPPORT;
	if (unlikely(hdr_len > VMSO_TX_HDR_SIZE || skb->len <= hdr_len))
		return -EINVAL;
	pkt->mss = skb_shinfo(skb)->gso_size;
	if (unlikely(!pkt->mss))
		return -EINVAL;
	pkt->cmd = VMSO_TX_CMD_USO | VMSO_TX_CMD_L4CSUM;
	if (vlan_get_protocol(skb) == htons(ETH_P_IP))
		pkt->cmd |= VMSO_TX_CMD_IPCSUM;
	return vmso_tx_prep_descs(tx, skb, pkt, hdr_len, virt);
}

/*
 * Decides the header length, offload bits and descriptor count of a packet.
 * It may pull headers into the linear part, linearize, or fall back to a
 * software checksum; it never frees the skb.
 */
static int vmso_tx_prep(struct vmso_tx_ring *tx, struct sk_buff *skb,
			struct vmso_tx_pkt *pkt, bool virt)
{
	struct vmso_priv *priv = tx->priv;
	u32 hdr_len = 0;

	pkt->skb = skb;
	pkt->cmd = 0;
	pkt->mss = 0;
	pkt->nseg = 0;
	pkt->drv_tso = false;
	pkt->drv_csum = false;

	if (unlikely(skb->len < ETH_HLEN || skb->len > priv->max_pkt))
		return -EINVAL;

	/* Pulling may move skb_shinfo(): it is re-read after each pull */
	if (skb_is_gso(skb)) {
		u32 gso_type = skb_shinfo(skb)->gso_type;

		if (gso_type & SKB_GSO_UDP_L4)
			return vmso_tx_prep_uso(tx, skb, pkt, virt);
		if (unlikely(!(gso_type & (SKB_GSO_TCPV4 | SKB_GSO_TCPV6))))
			return -EPROTONOSUPPORT;
		if (vmso_tx_pull(skb, skb_transport_offset(skb) +
					sizeof(struct tcphdr)))
			return -ENOMEM;
		hdr_len = skb_tcp_all_headers(skb);
		pkt->cmd = VMSO_TX_CMD_TSO | VMSO_TX_CMD_L4CSUM;
		if (gso_type & SKB_GSO_TCPV4)
			pkt->cmd |= VMSO_TX_CMD_IPCSUM;
		pkt->mss = skb_shinfo(skb)->gso_size;
		if (unlikely(hdr_len > VMSO_TX_HDR_SIZE || !pkt->mss))
			return -EINVAL;
		if (vmso_tso_mode() == VMSO_TSO_DRIVER)
			return vmso_tx_prep_drv_tso(tx, skb, pkt, hdr_len,
						    virt);
	} else if (skb->ip_summed == CHECKSUM_PARTIAL) {
		hdr_len = vmso_tx_l4_hdr_len(skb);
		if (likely(hdr_len && hdr_len <= VMSO_TX_HDR_SIZE)) {
			pkt->cmd = VMSO_TX_CMD_L4CSUM;
			if (vlan_get_protocol(skb) == htons(ETH_P_IP))
				pkt->cmd |= VMSO_TX_CMD_IPCSUM;
		} else {
			hdr_len = 0;
			if (skb_checksum_help(skb))
				return -EINVAL;
		}
	}

	if (!hdr_len) {
		/*
		 * No offload: the device does not parse the packet, so the
		 * physically addressed first descriptor is simply the start
		 * of the linear part.
		 */
		if (vmso_tx_pull(skb, ETH_HLEN))
			return -ENOMEM;
		hdr_len = min_t(u32, skb_headlen(skb), VMSO_TX_HDR_SIZE);
	}
	return vmso_tx_prep_descs(tx, skb, pkt, hdr_len, virt);
}

/*
 * Counts the descriptors of a chain whose first @hdr_len bytes go into the
 * header buffer (linearizing past MAX_SG) and finishes @pkt.
 */
static int vmso_tx_prep_descs(struct vmso_tx_ring *tx, struct sk_buff *skb,
			      struct vmso_tx_pkt *pkt, u32 hdr_len, bool virt)
{
	struct vmso_priv *priv = tx->priv;
	struct skb_shared_info *shinfo;
	int descs, i;

	if (vmso_tx_pull(skb, hdr_len))
		return -ENOMEM;

	shinfo = skb_shinfo(skb);
	descs = 1 + (skb_headlen(skb) > hdr_len);
	for (i = 0; i < shinfo->nr_frags; i++) {
		const skb_frag_t *frag = &shinfo->frags[i];

		if (!skb_frag_size(frag))
			continue;
		descs++;
		/* A frag without a kernel mapping cannot go by VA */
		if (PageHighMem(skb_frag_page(frag)))
			virt = false;
	}
	if (unlikely(descs > priv->max_sg)) {
		if (skb_linearize(skb))
			return -ENOMEM;
		descs = 1 + (skb_headlen(skb) > hdr_len);
		u64_stats_update_begin(&tx->xstats.syncp);
		u64_stats_inc(&tx->xstats.linearized);
		u64_stats_update_end(&tx->xstats.syncp);
	}

	pkt->hdr_len = hdr_len;
	pkt->descs = descs;
	pkt->virt = virt;
	return 0;
}

void vmso_tx_put_desc(struct vmso_tx_ring *tx, u32 idx, u64 addr, u64 pdbr,
		      u32 len, u16 mss, u16 cmd)
{
	struct vmso_tx_desc *d = &tx->desc[idx & tx->mask];

	d->addr = cpu_to_le64(addr);
	d->pdbr = cpu_to_le64(pdbr);
	d->len = cpu_to_le32(len);
	d->mss = cpu_to_le16(mss);
	d->cmd = cpu_to_le16(cmd);
	d->status = 0;
	d->error = 0;
	d->rsvd = 0;
}

static void vmso_tx_unmap_slot(struct vmso_tx_ring *tx, struct vmso_tx_buf *buf)
{
	struct device *dev = &tx->priv->pdev->dev;

	switch (buf->map) {
	case VMSO_TX_MAP_SINGLE:
		dma_unmap_single(dev, buf->dma, buf->dma_len, DMA_TO_DEVICE);
		break;
	case VMSO_TX_MAP_PAGE:
		dma_unmap_page(dev, buf->dma, buf->dma_len, DMA_TO_DEVICE);
		break;
	default:
		break;
	}
	buf->map = VMSO_TX_MAP_NONE;
}

/*
 * Posts one payload slice at slot @idx: @len bytes at @kva, which is either
 * linear skb data (@frag NULL) or lies in @frag at offset @off.
 */
static int vmso_tx_put_payload(struct vmso_tx_ring *tx,
			       const struct vmso_tx_pkt *pkt, u32 idx,
			       const void *kva, const skb_frag_t *frag,
			       u32 off, u32 len)
{
	struct vmso_priv *priv = tx->priv;
	struct vmso_tx_buf *buf = &tx->bufs[idx & tx->mask];
	struct device *dev = &priv->pdev->dev;
	dma_addr_t dma;

	if (unlikely(len > VMSO_TX_DESC_MAX_LEN))
		return -EMSGSIZE;

	if (pkt->virt) {
		/*
		 * The device translates @kva through the kernel half of the
		 * page tables at priv->pdbr (the direct map, or any kernel
		 * mapping). The skb, held until DD, keeps the pages alive.
		 */
		vmso_tx_put_desc(tx, idx, (u64)(uintptr_t)kva, priv->pdbr, len,
				 0, priv->va_cmd);
		return 0;
	}

	if (frag) {
		dma = skb_frag_dma_map(dev, frag, off, len, DMA_TO_DEVICE);
		buf->map = VMSO_TX_MAP_PAGE;
	} else {
		dma = dma_map_single(dev, (void *)kva, len, DMA_TO_DEVICE);
		buf->map = VMSO_TX_MAP_SINGLE;
	}
	if (unlikely(dma_mapping_error(dev, dma))) {
		buf->map = VMSO_TX_MAP_NONE;
		return -ENOMEM;
	}
	buf->dma = dma;
	buf->dma_len = len;
	vmso_tx_put_desc(tx, idx, dma, 0, len, 0, 0);
	return 0;
}

/*
 * Writes the headers of one segment into @h: @t's headers with the IPv4
 * total length, ID (+ seg->id_off) and header checksum (computed with
 * seg->ip_csum, else 0) or the IPv6 payload length; then for TCP the
 * sequence number (+ seg->seq_off), FIN and PSH cleared but on the last
 * segment and CWR but on the first, for UDP the length; the TCP or UDP
 * checksum field cleared with seg->clear_l4_csum, else left as in @t.
 *
 * Driver-side TSO (the segments of a superpacket, below) and zero-copy
 * send (the packets of a submission, zc.c) both cut their headers here.
 */
void vmso_seg_hdr(u8 *h, const struct vmso_hdr_tmpl *t,
		  const struct vmso_seg *seg)
{
	u32 l3 = t->l3, l4 = t->l4, hl = t->len;

	memcpy(h, t->hdr, hl);
	if (t->v4) {
		struct iphdr *iph = (struct iphdr *)(h + l3);

		iph->tot_len = htons(hl - l3 + seg->len);
		iph->id = htons(ntohs(iph->id) + seg->id_off);
		iph->check = 0;
		if (seg->ip_csum)
			iph->check = ip_fast_csum(iph, iph->ihl);
	} else {
		struct ipv6hdr *ip6h = (struct ipv6hdr *)(h + l3);

		ip6h->payload_len = htons(hl - l4 + seg->len);
	}
	if (t->tcp) {
		struct tcphdr *th = (struct tcphdr *)(h + l4);

		th->seq = htonl(ntohl(th->seq) + seg->seq_off);
		if (!seg->last) {
			th->fin = 0;
			th->psh = 0;
		}
		if (!seg->first)
			th->cwr = 0;
		if (seg->clear_l4_csum)
			th->check = 0;
	} else {
		struct udphdr *uh = (struct udphdr *)(h + l4);

		uh->len = htons(sizeof(*uh) + seg->len);
		if (seg->clear_l4_csum)
			uh->check = 0;
	}
}

/*
 * Driver-side TSO with pkt->drv_csum: the TCP checksum of segment @i (@len
 * payload bytes), whose headers vmso_seg_hdr() wrote into @h with the
 * checksum field cleared, computed over the payload in place
 * (skb_checksum() walks the linear part and frags; nothing is copied).
 */
static void vmso_tx_seg_csum(const struct vmso_tx_pkt *pkt,
			     const struct vmso_hdr_tmpl *t, u8 *h, u32 i,
			     u32 len)
{
	struct tcphdr *th = (struct tcphdr *)(h + t->l4);
	u32 thlen = t->len - t->l4;
	__wsum sum;

	sum = skb_checksum(pkt->skb, t->len + i * pkt->mss, len, 0);
	sum = csum_partial(th, thlen, sum);
	if (t->v4) {
		const struct iphdr *iph = (const struct iphdr *)(h + t->l3);

		th->check = csum_tcpudp_magic(iph->saddr, iph->daddr,
					      thlen + len, IPPROTO_TCP, sum);
	} else {
		const struct ipv6hdr *ip6h =
			(const struct ipv6hdr *)(h + t->l3);

		th->check = csum_ipv6_magic(&ip6h->saddr, &ip6h->daddr,
					    thlen + len, IPPROTO_TCP, sum);
	}
}

/*
 * Driver-side TSO, physical mode: maps the linear remainder and each frag once;
 * mapping k is owned by slot first + k (a unit has at least as many slots
 * as pieces). dma[] gets each piece's DMA address, indexed piece + 1.
 */
static int vmso_tx_map_pieces(struct vmso_tx_ring *tx,
			      const struct vmso_tx_pkt *pkt, dma_addr_t *dma)
{
	struct sk_buff *skb = pkt->skb;
	const struct skb_shared_info *shinfo = skb_shinfo(skb);
	struct device *dev = &tx->priv->pdev->dev;
	u32 first = tx->ntu, k = 0, lin = skb_headlen(skb) - pkt->hdr_len;
	struct vmso_tx_buf *buf;
	int i;

	if (lin) {
		buf = &tx->bufs[(first + k++) & tx->mask];
		dma[0] = dma_map_single(dev, skb->data + pkt->hdr_len, lin,
					DMA_TO_DEVICE);
		if (dma_mapping_error(dev, dma[0]))
			return -ENOMEM;
		buf->map = VMSO_TX_MAP_SINGLE;
		buf->dma = dma[0];
		buf->dma_len = lin;
	}
	for (i = 0; i < shinfo->nr_frags; i++) {
		const skb_frag_t *frag = &shinfo->frags[i];
		u32 len = skb_frag_size(frag);

		if (!len)
			continue;
		buf = &tx->bufs[(first + k++) & tx->mask];
		dma[i + 1] = skb_frag_dma_map(dev, frag, 0, len, DMA_TO_DEVICE);
		if (dma_mapping_error(dev, dma[i + 1]))
			return -ENOMEM;
		buf->map = VMSO_TX_MAP_PAGE;
		buf->dma = dma[i + 1];
		buf->dma_len = len;
	}
	return 0;
}

/*
 * Driver-side TSO: posts the specification of a superpacket, one chain (header
 * from the pool + payload slices, EOP) per segment. The caller rings the
 * doorbell once. Returns the index one past the last descriptor.
 */
static int vmso_tx_post_drv_tso(struct vmso_tx_ring *tx,
				const struct vmso_tx_pkt *pkt, u32 *end)
{
	struct vmso_priv *priv = tx->priv;
	struct sk_buff *skb = pkt->skb;
	u32 gso_type = skb_shinfo(skb)->gso_type;
	const struct vmso_hdr_tmpl t = {
		.hdr = skb->data,
		.len = pkt->hdr_len,
		.l3 = skb_network_offset(skb),
		.l4 = skb_transport_offset(skb),
		.v4 = gso_type & SKB_GSO_TCPV4,
		.tcp = true,
	};
	dma_addr_t dma[MAX_SKB_FRAGS + 1];
	u32 payload = skb->len - pkt->hdr_len, idx = tx->ntu, i;
	u16 va_cmd = priv->va_cmd;
	struct vmso_tx_cursor c;
	int err;

	if (!pkt->virt) {
		err = vmso_tx_map_pieces(tx, pkt, dma);
		if (err)
			return err;
	}

	vmso_tx_cursor_init(&c, skb, pkt->hdr_len);
	for (i = 0; i < pkt->nseg; i++) {
		u32 len = min_t(u32, pkt->mss, payload - i * pkt->mss);
		u32 slot = idx & tx->mask, left = len, n, off;
		u8 *h = tx->hdr + slot * VMSO_TX_HDR_SIZE;
		const struct vmso_seg seg = {
			.len = len,
			.seq_off = i * pkt->mss,
			.id_off = gso_type & SKB_GSO_TCP_FIXEDID ? 0 : i,
			.first = i == 0,
			.last = i + 1 == pkt->nseg,
			/* else the device computes them from scratch */
			.ip_csum = pkt->drv_csum,
			.clear_l4_csum = pkt->drv_csum,
		};
		const void *kva;
		int piece;

		vmso_seg_hdr(h, &t, &seg);
		if (pkt->drv_csum)
			vmso_tx_seg_csum(pkt, &t, h, i, len);
		vmso_tx_put_desc(tx, idx++,
				 tx->hdr_dma + slot * VMSO_TX_HDR_SIZE, 0,
				 pkt->hdr_len, 0, pkt->cmd);
		while (left) {
			n = vmso_tx_cursor_next(&c, left, &kva, &piece, &off);
			if (WARN_ON_ONCE(!n))
				return -EINVAL;
			if (pkt->virt)
				vmso_tx_put_desc(tx, idx++, (uintptr_t)kva,
						 priv->pdbr, n, 0, va_cmd);
			else
				vmso_tx_put_desc(tx, idx++,
						 dma[piece + 1] + off, 0, n, 0,
						 0);
			left -= n;
		}
		tx->desc[(idx - 1) & tx->mask].cmd |=
			cpu_to_le16(VMSO_TX_CMD_EOP);
	}
	*end = idx;
	return 0;
}

/*
 * Builds the descriptor chain of @pkt at tx->ntu and publishes it to the
 * completion path; the caller rings the doorbell. Caller holds the TX lock
 * and has checked that pkt->descs slots are free.
 */
static int vmso_tx_post(struct vmso_tx_ring *tx, const struct vmso_tx_pkt *pkt)
{
	struct sk_buff *skb = pkt->skb;
	struct skb_shared_info *shinfo = skb_shinfo(skb);
	u32 first = tx->ntu, idx = first, slot = first & tx->mask;
	u32 hdr = pkt->hdr_len, len, i;
	struct vmso_tx_buf *fbuf;
	int err;

	if (pkt->drv_tso) {
		err = vmso_tx_post_drv_tso(tx, pkt, &idx);
		if (err) {
			idx = first + pkt->descs;
			goto unwind;
		}
		goto publish;
	}

	/* Slot 0: headers by physical address, offload bits and MSS */
	memcpy(tx->hdr + slot * VMSO_TX_HDR_SIZE, skb->data, hdr);
	vmso_tx_put_desc(tx, idx++, tx->hdr_dma + slot * VMSO_TX_HDR_SIZE, 0,
			 hdr, pkt->mss, pkt->cmd);

	/* The rest of the linear part */
	len = skb_headlen(skb) - hdr;
	if (len) {
		err = vmso_tx_put_payload(tx, pkt, idx, skb->data + hdr, NULL,
					  0, len);
		if (err)
			goto unwind;
		idx++;
	}

	for (i = 0; i < shinfo->nr_frags; i++) {
		const skb_frag_t *frag = &shinfo->frags[i];

		len = skb_frag_size(frag);
		if (!len)
			continue;
		err = vmso_tx_put_payload(tx, pkt, idx, skb_frag_address(frag),
					  frag, 0, len);
		if (err)
			goto unwind;
		idx++;
	}

	tx->desc[(idx - 1) & tx->mask].cmd |= cpu_to_le16(VMSO_TX_CMD_EOP);

publish:
	fbuf = &tx->bufs[slot];
	fbuf->skb = skb;
	fbuf->zc = NULL;
	fbuf->nr_descs = idx - first;
	fbuf->virt = pkt->virt;

	/* Pairs with smp_load_acquire() in vmso_tx_clean() */
	smp_store_release(&tx->ntu, idx);

	u64_stats_update_begin(&tx->xstats.syncp);
	if (pkt->virt) {
		u64_stats_inc(&tx->xstats.va_packets);
		u64_stats_add(&tx->xstats.va_descs,
			      idx - first - (pkt->drv_tso ? pkt->nseg : 1));
	} else {
		u64_stats_inc(&tx->xstats.phys_packets);
	}
	if (pkt->drv_tso) {
		u64_stats_inc(&tx->xstats.drv_tso_packets);
		u64_stats_add(&tx->xstats.drv_tso_segments, pkt->nseg);
		if (pkt->drv_csum)
			u64_stats_inc(&tx->xstats.drv_tso_sw_csum);
	} else if (pkt->cmd & VMSO_TX_CMD_TSO) {
		u64_stats_inc(&tx->xstats.tso_packets);
	} else if (pkt->cmd & VMSO_TX_CMD_USO) {
		u64_stats_inc(&tx->xstats.uso_packets);
	} else if (pkt->cmd & VMSO_TX_CMD_L4CSUM) {
		u64_stats_inc(&tx->xstats.csum_packets);
	}
	u64_stats_update_end(&tx->xstats.syncp);
	return 0;

unwind:
	while (idx != first)
		vmso_tx_unmap_slot(tx, &tx->bufs[--idx & tx->mask]);
	u64_stats_update_begin(&tx->xstats.syncp);
	u64_stats_inc(&tx->xstats.map_errors);
	u64_stats_update_end(&tx->xstats.syncp);
	return err;
}

/* Tells the device about every posted chain. Caller holds the TX lock. */
void vmso_tx_doorbell(struct vmso_tx_ring *tx)
{
	enum vmso_doorbell db;

	db = vmso_ring_doorbell(tx->qp, true, tx->tail_reg, tx->ntu, tx->mask,
				&tx->tail);
	if (db == VMSO_DOORBELL_NONE)
		return;
	u64_stats_update_begin(&tx->xstats.syncp);
	u64_stats_inc(db == VMSO_DOORBELL_RUNG ? &tx->xstats.doorbells :
						 &tx->xstats.notified);
	u64_stats_update_end(&tx->xstats.syncp);
}

void vmso_tx_maybe_stop(struct vmso_tx_ring *tx, struct netdev_queue *txq)
{
	if (likely(vmso_tx_unused(tx) >= tx->stop_thresh))
		return;

	netif_tx_stop_queue(txq);
	u64_stats_update_begin(&tx->xstats.syncp);
	u64_stats_inc(&tx->xstats.queue_stops);
	u64_stats_update_end(&tx->xstats.syncp);

	/* Pairs with smp_mb() in vmso_tx_clean(): catch a racing clean */
	smp_mb();
	if (vmso_tx_unused(tx) >= tx->stop_thresh)
		netif_tx_start_queue(txq);
}

netdev_tx_t vmso_start_xmit(struct sk_buff *skb, struct net_device *netdev)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	u16 q = skb_get_queue_mapping(skb);
	struct vmso_tx_ring *tx = &priv->qp[q].tx;
	struct netdev_queue *txq = netdev_get_tx_queue(netdev, q);
	struct vmso_tx_pkt pkt;
	unsigned int len;

	if (unlikely(vmso_tx_prep(tx, skb, &pkt, vmso_tx_use_va(priv))))
		goto drop;

	if (unlikely(vmso_tx_unused(tx) < pkt.descs)) {
		/* Not expected: the queue stops with a whole skb's room left */
		netif_tx_stop_queue(txq);
		vmso_tx_doorbell(tx);
		return NETDEV_TX_BUSY;
	}

	len = skb->len;
	skb_tx_timestamp(skb);
	if (unlikely(vmso_tx_post(tx, &pkt)))
		goto drop;

	vmso_tx_maybe_stop(tx, txq);
	/* One TX_TAIL write per batch: the last skb, or a stopped queue */
	if (__netdev_tx_sent_queue(txq, len, netdev_xmit_more()))
		vmso_tx_doorbell(tx);
	return NETDEV_TX_OK;

drop:
	dev_kfree_skb_any(skb);
	u64_stats_update_begin(&tx->xstats.syncp);
	u64_stats_inc(&tx->xstats.dropped);
	u64_stats_update_end(&tx->xstats.syncp);
	if (!netdev_xmit_more())
		vmso_tx_doorbell(tx);
	return NETDEV_TX_OK;
}

netdev_features_t vmso_features_check(struct sk_buff *skb,
				      struct net_device *netdev,
				      netdev_features_t features)
{
	u32 l3 = skb_network_offset(skb), l4, hdr_end;
	u8 proto;

	features = vlan_features_check(skb, features);
	if (skb->ip_summed != CHECKSUM_PARTIAL)
		return features;

	/* The device parses Ethernet, one optional 802.1Q tag, IPv4 or IPv6
	 * without extension headers, then TCP or UDP, all in 256 bytes.
	 */
	l4 = skb_checksum_start_offset(skb);
	if (l3 != ETH_HLEN && l3 != ETH_HLEN + VLAN_HLEN)
		goto no_offload;
	if (l4 != skb_transport_offset(skb) ||
	    l4 + sizeof(struct udphdr) > skb_headlen(skb))
		goto no_offload;

	switch (vlan_get_protocol(skb)) {
	case htons(ETH_P_IP):
		if (l4 != l3 + ip_hdrlen(skb))
			goto no_offload;
		proto = ip_hdr(skb)->protocol;
		break;
	case htons(ETH_P_IPV6):
		if (l4 != l3 + sizeof(struct ipv6hdr))
			goto no_offload;
		proto = ipv6_hdr(skb)->nexthdr;
		break;
	default:
		goto no_offload;
	}

	if (proto == IPPROTO_TCP &&
	    skb->csum_offset == offsetof(struct tcphdr, check) &&
	    l4 + sizeof(struct tcphdr) <= skb_headlen(skb))
		hdr_end = l4 + tcp_hdrlen(skb);
	else if (proto == IPPROTO_UDP &&
		 (!skb_is_gso(skb) ||
		  (skb_shinfo(skb)->gso_type & SKB_GSO_UDP_L4)) &&
		 skb->csum_offset == offsetof(struct udphdr, check))
		hdr_end = l4 + sizeof(struct udphdr);
	else
		goto no_offload;
	if (hdr_end > VMSO_TX_MAX_HDR)
		goto no_offload;
	/* The device refuses segments below VMSO_MIN_MSS: the stack segments */
	if (skb_is_gso(skb) && skb_shinfo(skb)->gso_size < VMSO_MIN_MSS)
		return features & ~NETIF_F_GSO_MASK;
	return features;

no_offload:
	return features & ~(NETIF_F_CSUM_MASK | NETIF_F_GSO_MASK);
}

/* Every descriptor of the chain at @first has DD (the ABI does not say in
 * which order the device writes them, so check them all).
 */
static bool vmso_tx_chain_done(const struct vmso_tx_ring *tx, u32 first,
			       u32 n)
{
	u32 i;

	for (i = 0; i < n; i++) {
		const struct vmso_tx_desc *d;

		d = &tx->desc[(first + i) & tx->mask];
		if (!(le16_to_cpu(READ_ONCE(d->status)) & VMSO_TX_STS_DD))
			return false;
	}
	return true;
}

/*
 * The error of a unit: that of its first failed packet. A unit segmented by
 * the driver is one packet per segment, each ending with EOP.
 */
static u16 vmso_tx_unit_error(const struct vmso_tx_ring *tx, u32 first, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++) {
		const struct vmso_tx_desc *d;
		u16 err;

		d = &tx->desc[(first + i) & tx->mask];
		err = le16_to_cpu(d->error);

		if (err)
			return err;
	}
	return VMSO_TX_ERR_OK;
}

bool vmso_tx_work_pending(struct vmso_tx_ring *tx)
{
	u32 ntc = tx->ntc;

	if (!skb_queue_empty(&tx->retry))
		return true;
	/* Pairs with smp_store_release() in vmso_tx_post() */
	if (ntc == smp_load_acquire(&tx->ntu))
		return false;
	return vmso_tx_chain_done(tx, ntc, tx->bufs[ntc & tx->mask].nr_descs);
}

/*
 * Re-posts the skbs whose VA chain faulted, in physical mode. Runs in the
 * TX NAPI poll; takes the TX lock like ndo_start_xmit. Adds the skbs it
 * has to drop to *pkts and *bytes for BQL.
 */
static void vmso_tx_resend(struct vmso_tx_ring *tx, struct netdev_queue *txq,
			   unsigned int *pkts, unsigned int *bytes)
{
	struct vmso_tx_pkt pkt;
	struct sk_buff *skb;
	u64 drops = 0;

	/* Trylock: netpoll may poll us from inside our own xmit */
	if (!__netif_tx_trylock(txq))
		return;

	while ((skb = skb_peek(&tx->retry))) {
		if (!vmso_tx_prep(tx, skb, &pkt, false)) {
			if (vmso_tx_unused(tx) < pkt.descs)
				break;	/* wait for more completions */
			__skb_unlink(skb, &tx->retry);
			if (!vmso_tx_post(tx, &pkt))
				continue;
		} else {
			__skb_unlink(skb, &tx->retry);
		}
		(*pkts)++;
		*bytes += skb->len;
		drops++;
		dev_kfree_skb_any(skb);
	}
	vmso_tx_doorbell(tx);
	vmso_tx_maybe_stop(tx, txq);
	__netif_tx_unlock(txq);

	if (drops) {
		u64_stats_update_begin(&tx->cstats.syncp);
		u64_stats_add(&tx->cstats.fallback_drops, drops);
		u64_stats_update_end(&tx->cstats.syncp);
	}
}

/*
 * Reclaims completed chains. TX work does not count against the NAPI
 * budget; @budget only tells napi_consume_skb() whether this is netpoll.
 * Returns true if work is left (ring not fully scanned, or re-sends
 * pending).
 */
bool vmso_tx_clean(struct vmso_tx_ring *tx, int budget)
{
	struct vmso_priv *priv = tx->priv;
	struct net_device *netdev = priv->netdev;
	struct netdev_queue *txq = netdev_get_tx_queue(netdev, tx->qid);
	u32 ntc = tx->ntc, limit = tx->size;
	unsigned int pkts = 0, bytes = 0;	/* BQL: skbs released */
	u64 ok_pkts = 0, ok_bytes = 0, errors = 0, fallbacks = 0;
	unsigned int zc_units = 0;
	bool more = false;
	u32 ntu;

	/* Pairs with smp_store_release() in vmso_tx_post() */
	ntu = smp_load_acquire(&tx->ntu);
	while (ntc != ntu) {
		struct vmso_tx_buf *first = &tx->bufs[ntc & tx->mask];
		struct sk_buff *skb = first->skb;
		u32 n = first->nr_descs, i;
		u16 err;

		if (!limit--) {
			more = true;
			break;
		}
		if (!vmso_tx_chain_done(tx, ntc, n))
			break;
		/* Read the error only after DD */
		dma_rmb();
		err = vmso_tx_unit_error(tx, ntc, n);

		for (i = 0; i < n; i++)
			vmso_tx_unmap_slot(tx, &tx->bufs[(ntc + i) & tx->mask]);
		first->skb = NULL;
		ntc += n;

		if (first->zc) {
			/* A zero-copy send packet: not an skb, not in BQL */
			vmso_zc_tx_done(first->zc, first->zc_len, err);
			first->zc = NULL;
			zc_units++;
			continue;
		}

		if (likely(err == VMSO_TX_ERR_OK)) {
			ok_pkts++;
			ok_bytes += skb->len;
			pkts++;
			bytes += skb->len;
			napi_consume_skb(skb, budget);
			continue;
		}
		if (err == VMSO_TX_ERR_PAGE_FAULT && first->virt) {
			/* BQL completes it when the physical copy completes */
			__skb_queue_tail(&tx->retry, skb);
			fallbacks++;
			continue;
		}
		errors++;
		u64_stats_update_begin(&tx->cstats.syncp);
		u64_stats_inc(&tx->cstats.err[min_t(u16, err,
						    VMSO_TX_ERR_NUM)]);
		u64_stats_update_end(&tx->cstats.syncp);
		pkts++;
		bytes += skb->len;
		dev_kfree_skb_any(skb);
	}

	/* Pairs with the READ_ONCE() in vmso_tx_unused(): the slots are
	 * free only once we are done with them.
	 */
	smp_store_release(&tx->ntc, ntc);

	if (!skb_queue_empty(&tx->retry))
		vmso_tx_resend(tx, txq, &pkts, &bytes);
	if (!skb_queue_empty(&tx->retry))
		more = true;

	if (pkts)
		netdev_tx_completed_queue(txq, pkts, bytes);

	if (ok_pkts || errors || fallbacks) {
		u64_stats_update_begin(&tx->cstats.syncp);
		u64_stats_add(&tx->cstats.packets, ok_pkts);
		u64_stats_add(&tx->cstats.bytes, ok_bytes);
		u64_stats_add(&tx->cstats.errors, errors);
		u64_stats_add(&tx->cstats.va_fallbacks, fallbacks);
		u64_stats_update_end(&tx->cstats.syncp);
	}

	if (unlikely((pkts || zc_units) && netif_running(netdev) &&
		     vmso_tx_unused(tx) >= tx->wake_thresh)) {
		/* Pairs with smp_mb() in vmso_tx_maybe_stop() */
		smp_mb();
		if (netif_tx_queue_stopped(txq)) {
			netif_tx_wake_queue(txq);
			u64_stats_update_begin(&tx->cstats.syncp);
			u64_stats_inc(&tx->cstats.queue_wakes);
			u64_stats_update_end(&tx->cstats.syncp);
		}
	}

	return more;
}

/* Descriptors one skb can take, which the queue keeps free */
static u32 vmso_tx_descs_max(void)
{
	return vmso_tso_mode() == VMSO_TSO_DRIVER ? VMSO_TX_DESCS_MAX :
					     VMSO_TX_DESCS_MAX_DEV;
}

/*
 * Smallest TX ring: the queue stops below stop_thresh free slots and wakes
 * at twice that, so the ring must hold more than the wake threshold.
 */
u32 vmso_tx_ring_min(void)
{
	u32 min = roundup_pow_of_two(2 * (vmso_tx_descs_max() + 2) + 1);

	return max_t(u32, min, VMSO_RING_MIN);
}

/*
 * Allocates the memory of a TX ring of @size (a power of two) slots: the
 * ring's descriptors and slots, and one header buffer per slot.
 */
int vmso_tx_mem_alloc(struct vmso_priv *priv, u32 size,
		      struct vmso_tx_mem *m)
{
	struct device *dev = &priv->pdev->dev;

	if (vmso_ring_mem_alloc(priv, size, sizeof(struct vmso_tx_desc),
				sizeof(struct vmso_tx_buf), &m->ring))
		return -ENOMEM;
	m->hdr = dma_alloc_coherent(dev, size * VMSO_TX_HDR_SIZE, &m->hdr_dma,
				    GFP_KERNEL);
	if (!m->hdr) {
		vmso_ring_mem_free(priv, sizeof(struct vmso_tx_desc), &m->ring);
		return -ENOMEM;
	}
	return 0;
}

/* Frees what vmso_tx_mem_alloc() allocated; @m may be empty */
void vmso_tx_mem_free(struct vmso_priv *priv, struct vmso_tx_mem *m)
{
	struct device *dev = &priv->pdev->dev;

	if (!m->ring.bufs)
		return;
	dma_free_coherent(dev, m->ring.size * VMSO_TX_HDR_SIZE, m->hdr,
			  m->hdr_dma);
	m->hdr = NULL;
	vmso_ring_mem_free(priv, sizeof(struct vmso_tx_desc), &m->ring);
}

/*
 * Exchanges the ring's memory with @m and starts the ring empty. The ring
 * must be drained (vmso_tx_drain()), the device reset and the TX NAPI
 * disabled. Field by field like vmso_rx_mem_swap(), and not shared with
 * it: the rings are different structures, and TX has header buffers and
 * queue thresholds besides.
 */
void vmso_tx_mem_swap(struct vmso_tx_ring *tx, struct vmso_tx_mem *m)
{
	struct vmso_tx_mem old = {
		.ring = {
			.desc = tx->desc, .desc_dma = tx->desc_dma,
			.bufs = tx->bufs, .size = tx->size,
		},
		.hdr = tx->hdr, .hdr_dma = tx->hdr_dma,
	};

	tx->desc = m->ring.desc;
	tx->desc_dma = m->ring.desc_dma;
	tx->bufs = m->ring.bufs;
	tx->size = m->ring.size;
	tx->mask = tx->size ? tx->size - 1 : 0;
	tx->hdr = m->hdr;
	tx->hdr_dma = m->hdr_dma;
	tx->stop_thresh = vmso_tx_descs_max() + 2;
	tx->wake_thresh = 2 * tx->stop_thresh;
	tx->ntu = 0;
	tx->ntc = 0;
	tx->tail = 0;
	*m = old;
}

/* Frees every skb on the ring; zero-copy packets still on it complete with
 * -ENETDOWN. The device must be reset and the TX NAPI disabled.
 */
void vmso_tx_drain(struct vmso_tx_ring *tx)
{
	u32 ntc = tx->ntc;

	if (!tx->bufs)
		return;

	while (ntc != tx->ntu) {
		struct vmso_tx_buf *first = &tx->bufs[ntc & tx->mask];
		u32 n = first->nr_descs, i;

		for (i = 0; i < n; i++)
			vmso_tx_unmap_slot(tx, &tx->bufs[(ntc + i) & tx->mask]);
		if (first->zc)
			vmso_zc_tx_done(first->zc, first->zc_len, -ENETDOWN);
		else
			dev_kfree_skb_any(first->skb);
		first->skb = NULL;
		first->zc = NULL;
		ntc += n;
	}
	tx->ntc = ntc;
	__skb_queue_purge(&tx->retry);
	netdev_tx_reset_queue(netdev_get_tx_queue(tx->priv->netdev, tx->qid));
}
