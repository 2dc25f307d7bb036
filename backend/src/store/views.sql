-- Re-created at every start; never holds data.
CREATE OR REPLACE VIEW pair_scores AS
SELECT s.dataset, s.model, s.pair_id, p.subset, p.split, p.line,
       s.chosen_score, s.rejected_score,
       s.chosen_score - s.rejected_score AS margin,
       CASE WHEN s.chosen_score > s.rejected_score THEN 'agree'
            WHEN s.chosen_score = s.rejected_score THEN 'tie'
            ELSE 'disagree' END AS agreement,
       s.chosen_tokens, s.rejected_tokens, s.chosen_truncated, s.rejected_truncated, s.run_id
FROM scores s JOIN pairs p USING (dataset, pair_id);
