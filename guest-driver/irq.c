// SPDX-License-Identifier: GPL-2.0
/*
 * vmso interrupts: the MSI-X vectors, their handlers and masking.
 *
 * With MQ, vector 0 is misc and vector 1 + q belongs to queue pair q, with
 * an affinity hint to the pair's CPU; without (a 1.x device, or mq=0),
 * vectors 0 (TX) and 1 (RX) both schedule queue pair 0's NAPI and vector 2
 * is misc. The device masks a queue vector when it fires (auto-mask); the
 * NAPI poll unmasks it. Misc (link, page faults, device errors) reads
 * registers, so it runs in an IRQ thread.
 */

#include <linux/interrupt.h>
#include <linux/pci.h>

#include "vmso.h"

static const char * const vmso_fault_names[] = {
	[VMSO_FAULT_NONE] = "none",
	[VMSO_FAULT_NOT_PRESENT] = "not present",
	[VMSO_FAULT_RESERVED] = "reserved bit",
	[VMSO_FAULT_NON_CANONICAL] = "non-canonical address",
	[VMSO_FAULT_PTE_OUT_OF_RAM] = "page table outside RAM",
	[VMSO_FAULT_PAGE_OUT_OF_RAM] = "page outside RAM",
	[VMSO_FAULT_BAD_PDBR] = "misaligned PDBR",
};

/*
 * Unmasks a queue pair's interrupt after its NAPI poll completes, then
 * orders the MMIO write before the caller's recheck of the rings. The
 * device masks the vector when it fires (auto-mask), so nothing needs
 * acknowledging.
 */
void vmso_qp_rearm(struct vmso_qpair *qp)
{
	struct vmso_priv *priv = qp->priv;

	if (priv->mq)
		vmso_wr(priv, qp->unmask_reg, 1);
	else
		vmso_wr(priv, VMSO_REG_INT_MASK_CLR, VMSO_INT_TX | VMSO_INT_RX);
	/* Order the unmask before the caller's re-read of the rings */
	mb();
}

/* Follows STATUS.LINK_UP; returns true if the carrier changed */
static bool vmso_update_link(struct vmso_priv *priv, u32 status)
{
	struct net_device *netdev = priv->netdev;
	bool up = status & VMSO_STATUS_LINK_UP;

	if (up == netif_carrier_ok(netdev))
		return false;
	priv->link_changes++;
	if (up)
		netif_carrier_on(netdev);
	else
		netif_carrier_off(netdev);
	netif_info(priv, link, netdev, "link %s\n", up ? "up" : "down");
	return true;
}

/* Logs and clears the device's fault log (a failed page walk) */
static void vmso_log_fault(struct vmso_priv *priv)
{
	u32 reason = vmso_rd(priv, VMSO_REG_FAULT_REASON);
	u32 count, queue;
	u64 va, pdbr;

	if (!reason)
		return;
	va = (u64)vmso_rd(priv, VMSO_REG_FAULT_VA_HI) << 32 |
	     vmso_rd(priv, VMSO_REG_FAULT_VA_LO);
	pdbr = (u64)vmso_rd(priv, VMSO_REG_FAULT_PDBR_HI) << 32 |
	       vmso_rd(priv, VMSO_REG_FAULT_PDBR_LO);
	count = vmso_rd(priv, VMSO_REG_FAULT_COUNT);
	queue = priv->mq ? vmso_rd(priv, VMSO_REG_FAULT_QUEUE) : 0;
	vmso_wr(priv, VMSO_REG_FAULT_REASON, 0);	/* clear the log */
	priv->faults++;

	if (net_ratelimit())
		netdev_warn(priv->netdev,
			    "device page fault on queue %u: %s (%u) at VA %#llx, PDBR %#llx (%u since reset); resending physically\n",
			    queue, reason < ARRAY_SIZE(vmso_fault_names) ?
			    vmso_fault_names[reason] : "unknown",
			    reason, va, pdbr, count);
}

/* INT_CAUSE.ERROR: a bad doorbell, descriptor or register value */
static void vmso_report_error(struct vmso_priv *priv)
{
	u64 doorbells, descs;

	priv->dev_errors++;
	if (!net_ratelimit())
		return;
	doorbells = vmso_read_dev_stat(priv, VMSO_STAT_BAD_DOORBELLS);
	descs = vmso_read_dev_stat(priv, VMSO_STAT_BAD_DESCS);
	netdev_err(priv->netdev,
		   "device signalled an error (bad_doorbells %llu, bad_descs %llu since reset)\n",
		   doorbells, descs);
}

/* A queue pair's vector (without MQ: the TX and the RX vector) */
static irqreturn_t vmso_qp_irq(int irq, void *data)
{
	struct vmso_qpair *qp = data;

	/* The device has masked the vector; the poll unmasks it */
	napi_schedule_irqoff(&qp->napi);
	return IRQ_HANDLED;
}

/*
 * Misc vector (LINK, FAULT, ERROR), in a thread: it reads registers.
 *
 * The device clears a cause when it signals it, so INT_CAUSE only shows
 * causes raised while masked. The interrupt is therefore explained from
 * state as well: a carrier change (STATUS.LINK_UP) or new faults
 * (FAULT_COUNT); anything else is taken as ERROR. The state is read before
 * INT_CAUSE: an event after the state reads either shows in INT_CAUSE or
 * stays pending and fires again once unmasked.
 */
static irqreturn_t vmso_misc_thread(int irq, void *data)
{
	struct vmso_priv *priv = data;
	u32 cause, status, faults;
	bool explained;

	faults = vmso_rd(priv, VMSO_REG_FAULT_COUNT);
	status = vmso_rd(priv, VMSO_REG_STATUS);
	cause = vmso_rd(priv, VMSO_REG_INT_CAUSE) & VMSO_INT_MISC;
	if (cause)
		vmso_wr(priv, VMSO_REG_INT_CAUSE, cause);
	if (cause & VMSO_INT_LINK)
		status = vmso_rd(priv, VMSO_REG_STATUS);
	explained = cause & (VMSO_INT_LINK | VMSO_INT_FAULT);

	if (READ_ONCE(priv->up) && vmso_update_link(priv, status))
		explained = true;
	if (faults != priv->fault_count) {
		priv->fault_count = faults;
		explained = true;
	}
	if ((status & VMSO_STATUS_FAULT) || (cause & VMSO_INT_FAULT))
		vmso_log_fault(priv);
	if ((cause & VMSO_INT_ERROR) || !explained)
		vmso_report_error(priv);

	if (READ_ONCE(priv->up))
		vmso_wr(priv, VMSO_REG_INT_MASK_CLR, VMSO_INT_MISC);
	return IRQ_HANDLED;
}

/* What a vector's handler gets: priv for misc, else its queue pair */
static void *vmso_vec_data(struct vmso_priv *priv, u16 v)
{
	if (v == priv->misc_vec)
		return priv;
	return priv->mq ? (void *)&priv->qp[v - VMSO_MQ_VEC_QP(0)] :
			  (void *)&priv->qp[0];
}

/* Frees vectors 0..n-1 (and their affinity hints) */
void vmso_free_irqs(struct vmso_priv *priv, u16 n)
{
	u16 v;

	for (v = 0; v < n; v++) {
		int irq = pci_irq_vector(priv->pdev, v);

		if (v != priv->misc_vec)
			irq_update_affinity_hint(irq, NULL);
		free_irq(irq, vmso_vec_data(priv, v));
	}
}

/*
 * Requests every vector: misc (threaded: it reads registers) and the
 * queue pairs', each hinted to its pair's CPU.
 */
int vmso_request_irqs(struct vmso_priv *priv)
{
	struct pci_dev *pdev = priv->pdev;
	int err = 0;
	u16 v;

	for (v = 0; v < priv->nvec; v++) {
		char *name = priv->irq_name[v];
		int irq = pci_irq_vector(pdev, v);
		struct vmso_qpair *qp;

		if (v == priv->misc_vec) {
			snprintf(name, sizeof(priv->irq_name[0]),
				 "vmso-%s-misc", pci_name(pdev));
			err = request_threaded_irq(irq, NULL, vmso_misc_thread,
						   IRQF_ONESHOT, name, priv);
			if (err)
				break;
			continue;
		}
		qp = vmso_vec_data(priv, v);
		if (priv->mq)
			snprintf(name, sizeof(priv->irq_name[0]),
				 "vmso-%s-q%u", pci_name(pdev), qp->qid);
		else
			snprintf(name, sizeof(priv->irq_name[0]), "vmso-%s-%s",
				 pci_name(pdev), v == VMSO_VEC_TX ? "tx" : "rx");
		err = request_irq(irq, vmso_qp_irq, 0, name, qp);
		if (err)
			break;
		if (priv->mq && qp->cpu >= 0)
			irq_set_affinity_and_hint(irq, cpumask_of(qp->cpu));
	}
	if (err)
		vmso_free_irqs(priv, v);
	return err;
}

/*
 * MSI-X: with MQ, misc plus one vector per queue pair (fewer pairs if
 * fewer vectors are to be had); without, the 1.x three.
 */
int vmso_alloc_vectors(struct vmso_priv *priv)
{
	struct pci_dev *pdev = priv->pdev;
	int want, got;

	if (!priv->mq) {
		got = pci_alloc_irq_vectors(pdev, VMSO_NUM_VECTORS,
					    VMSO_NUM_VECTORS, PCI_IRQ_MSIX);
		if (got < 0) {
			dev_err(&pdev->dev, "cannot get %d MSI-X vectors: %d\n",
				VMSO_NUM_VECTORS, got);
			return got;
		}
		priv->nvec = got;
		priv->misc_vec = VMSO_VEC_MISC;
		return 0;
	}

	want = VMSO_MQ_VEC_QP(priv->max_queues);
	got = pci_alloc_irq_vectors(pdev, VMSO_MQ_VEC_QP(1), want,
				    PCI_IRQ_MSIX);
	if (got < 0) {
		dev_err(&pdev->dev, "cannot get %d MSI-X vectors: %d\n",
			VMSO_MQ_VEC_QP(1), got);
		return got;
	}
	if (got < want)
		dev_info(&pdev->dev, "%d of %d MSI-X vectors: %d queue pairs\n",
			 got, want, got - 1);
	priv->nvec = got;
	priv->misc_vec = VMSO_MQ_VEC_MISC;
	priv->max_queues = got - VMSO_MQ_VEC_QP(0);
	return 0;
}

/*
 * Unmasks misc and the queue pairs in use (with MQ each pair through its
 * INT_UNMASK); causes raised while masked are pending and fire now.
 */
void vmso_unmask_irqs(struct vmso_priv *priv)
{
	u16 q;

	if (priv->mq) {
		vmso_wr(priv, VMSO_REG_INT_MASK_CLR, VMSO_INT_MISC);
		for (q = 0; q < priv->num_queues; q++)
			vmso_wr(priv, priv->qp[q].unmask_reg, 1);
	} else {
		vmso_wr(priv, VMSO_REG_INT_MASK_CLR, VMSO_INT_ALL);
	}
}

/*
 * Masks what can be masked and waits for every handler that is running,
 * the misc thread included.
 */
void vmso_mask_irqs(struct vmso_priv *priv)
{
	int v;

	/* A pair's vector has no mask bit: the device reset masks it */
	vmso_wr(priv, VMSO_REG_INT_MASK_SET, VMSO_INT_ALL);
	for (v = 0; v < priv->nvec; v++)
		synchronize_irq(pci_irq_vector(priv->pdev, v));
}
