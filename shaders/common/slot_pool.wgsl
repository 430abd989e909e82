// The slot-pool rule shared by matvec_id and matvec_id_swiglu: which slot of the bound pool an
// expert id reads, and whether this dispatch writes its outputs. The kernel declares `slot_of`
// (expert id -> global slot). A pool holds the global slots slot_base .. slot_base + n_slots:
// an id whose slot lies there is `inside` (at `local` = slot - slot_base) and written here; an
// id past the end of slot_of is written (as 0) by the pool with slot_base 0 alone; any other
// output belongs to the dispatch over another pool. Workgroup-uniform when `e` is.

struct PoolSlot {
    inside: bool,
    write: bool,
    local: u32,
}

fn pool_slot(e: u32, slot_base: u32, n_slots: u32) -> PoolSlot {
    let known = e < arrayLength(&slot_of);
    var s = 0u;
    if known {
        s = slot_of[e];
    }
    // The subtraction wraps only when s < slot_base.
    let local = s - slot_base;
    let inside = known && s >= slot_base && local < n_slots;
    return PoolSlot(inside, inside || (!known && slot_base == 0u), local);
}
