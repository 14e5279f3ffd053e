-- Why a consent changed, when the customer did not change it. NULL: the customer’s own change,
-- through PUT /v1/personalize/preferences. `retention`: the daily retention job removed or reduced
-- the preferences row 18 months after last use (API.md §3), which lapsed a cross-merchant consent,
-- the job appends that row in the same D1 batch, so the log still tells the consent’s whole story.
ALTER TABLE consent_log ADD COLUMN reason TEXT CHECK (reason IS NULL OR reason = 'retention');
