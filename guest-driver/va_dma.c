// SPDX-License-Identifier: GPL-2.0
/*
 * vmso virtual-address DMA: the page-table root (PDBR) and paging mode the
 * driver hands the device for payload posted by kernel virtual address,
 * and invalidation of the device's IOTLB, its cache of translations per
 * PDBR (zero-copy sends use the user process's PDBR, see zc.c).
 */

#include <linux/pgtable.h>
#include <linux/sched/mm.h>

#include "vmso.h"

/*
 * VA payload DMA uses the kernel half of the page tables, which every pgd
 * shares. init_mm is not exported, so keep the probing task's active_mm
 * (and with it its pgd page) until remove.
 */
void vmso_setup_va(struct vmso_priv *priv)
{
#ifdef CONFIG_X86_64
	bool l5 = pgtable_l5_enabled();
	u32 need = VMSO_F_VA_DMA | (l5 ? VMSO_F_PG_5L : VMSO_F_PG_4L);

	priv->pg_levels = l5 ? 5 : 4;
	priv->mm = current->active_mm;
	mmgrab(priv->mm);
	priv->pdbr = __pa(priv->mm->pgd);
	priv->va_cmd = VMSO_TX_CMD_VM |
		       VMSO_TX_CMD_PGMODE(l5 ? VMSO_PGMODE_5L : VMSO_PGMODE_4L);
	priv->va_capable = (priv->dev_features & need) == need;
	if (!priv->va_capable)
		dev_info(&priv->pdev->dev,
			 "device lacks VA DMA for %d-level paging: payload uses physical DMA\n",
			 priv->pg_levels);
#else
	priv->va_capable = false;
#endif
}

/* After the device reset at remove: it no longer walks the page tables */
void vmso_release_va(struct vmso_priv *priv)
{
	if (priv->mm)
		mmdrop(priv->mm);
}

/*
 * Drops the device's cached translations of one page-table root. The
 * operand registers are shared, so the three writes go under a lock.
 */
void vmso_iotlb_inv_pdbr(struct vmso_priv *priv, u64 pdbr)
{
	unsigned long flags;

	spin_lock_irqsave(&priv->iotlb_lock, flags);
	vmso_wr64(priv, VMSO_REG_IOTLB_INV_PDBR_LO, pdbr);
	vmso_wr(priv, VMSO_REG_IOTLB_INV, VMSO_IOTLB_INV_PDBR);
	/*
	 * The device may pick up tails from the notify block before it sees a
	 * posted register write: a read returns only after the invalidation
	 * took effect, so descriptors published next are translated afresh.
	 */
	if (priv->notify)
		vmso_rd(priv, VMSO_REG_STATUS);
	spin_unlock_irqrestore(&priv->iotlb_lock, flags);
}
