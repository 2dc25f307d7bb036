//! Pure batching: sort inputs by length and cut batches by a padded-token budget, so short
//! texts are not padded to the length of long ones. Returns indices into the input, so the
//! caller can put results back in the original order.

/// Groups `lengths` (tokens per input) into batches. Inputs are sorted longest first (so the
/// largest batch shape is tried first and memory problems show up at once); a batch grows while
/// `max_len × batch_size` stays within `budget` and the batch holds at most `max_batch` inputs.
/// An input longer than the budget still gets a batch of its own. Every index appears once.
pub fn plan(lengths: &[usize], budget: usize, max_batch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut current_max = 0;
    for i in order {
        let len = lengths[i].max(1);
        let new_max = current_max.max(len);
        if !current.is_empty() && (new_max * (current.len() + 1) > budget || current.len() >= max_batch.max(1)) {
            batches.push(std::mem::take(&mut current));
            current_max = 0;
        }
        current_max = current_max.max(len);
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Tokens processed (including padding) for a plan: the cost the budget controls.
pub fn padded_tokens(lengths: &[usize], batches: &[Vec<usize>]) -> usize {
    batches.iter().map(|b| b.iter().map(|&i| lengths[i]).max().unwrap_or(0) * b.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_lands_in_exactly_one_batch_within_budget() {
        let lengths: Vec<usize> = (0..500).map(|i| (i * 7919) % 600 + 1).collect();
        for (budget, max_batch) in [(1024, 64), (4096, 8), (300, 1000), (1, 4)] {
            let batches = plan(&lengths, budget, max_batch);
            let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
            for b in &batches {
                let max = b.iter().map(|&i| lengths[i]).max().unwrap();
                assert!(b.len() <= max_batch);
                assert!(b.len() == 1 || max * b.len() <= budget, "batch {b:?} over budget {budget}");
            }
        }
    }

    #[test]
    fn sorting_cuts_padding_compared_with_arrival_order() {
        let lengths: Vec<usize> = (0..256).map(|i| if i % 4 == 0 { 400 } else { 40 }).collect();
        let sorted = plan(&lengths, 8 * 400, 8);
        let arrival: Vec<Vec<usize>> = (0..256).collect::<Vec<_>>().chunks(8).map(<[usize]>::to_vec).collect();
        assert!(padded_tokens(&lengths, &sorted) * 2 < padded_tokens(&lengths, &arrival));
    }

    #[test]
    fn empty_input_gives_no_batches() {
        assert!(plan(&[], 100, 8).is_empty());
    }
}
