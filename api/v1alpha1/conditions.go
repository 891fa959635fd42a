package v1alpha1

// Condition types. Ready is always present; Reconciling and Stalled are present only while
// true (kstatus "abnormal-true" conventions), so `kubectl wait --for=condition=Ready` and
// Argo CD health checks work.
const (
	// ConditionReady is True when the spec is accepted and its compiled form is published
	// to the dispatchers.
	ConditionReady = "Ready"
	// ConditionReconciling is True while the controller is working towards Ready and
	// expects to get there without a change to the spec.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when the controller cannot make progress without a change
	// to the spec or to the environment (an invalid spec, a missing NATS topology).
	ConditionStalled = "Stalled"
	// ConditionPaused is True on a Campaign that sends nothing: spec.paused is set or a
	// budget cap holds. A paused Campaign is still healthy (Ready).
	ConditionPaused = "Paused"
)

// Condition reasons. Event reasons equal condition reasons.
const (
	// ReasonPublished: the compiled spec is published to the croupier-config bucket.
	ReasonPublished = "Published"
	// ReasonProgressing: the controller is working on a new generation.
	ReasonProgressing = "Progressing"
	// ReasonInvalidSpec: the spec breaks a rule the API server cannot check (CEL syntax,
	// cron, time zone, templates, currencies); the message names the field and the reason.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonPolicyConflict: another policy of the same scope is older and wins.
	ReasonPolicyConflict = "PolicyConflict"
	// ReasonNATSTopologyMissing: the streams and buckets the dispatcher creates do not
	// exist yet; the controller retries until they do.
	ReasonNATSTopologyMissing = "NATSTopologyMissing"
	// ReasonNATSUnavailable: NATS could not be reached or refused a write; retried.
	ReasonNATSUnavailable = "NATSUnavailable"
	// ReasonDependencyNotFound: an object the spec refers to (a Segment, a ConfigMap) does
	// not exist yet; the controller retries when it appears.
	ReasonDependencyNotFound = "DependencyNotFound"
	// ReasonSecretNotFound: a Secret the policy names does not exist in its namespace.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretKeyMissing: a Secret the policy names lacks a key its provider needs.
	ReasonSecretKeyMissing = "SecretKeyMissing"
	// ReasonSpecPaused: spec.paused is true.
	ReasonSpecPaused = "SpecPaused"
	// ReasonBudgetExhausted: a budget cap of the Campaign holds; raising the budget in the
	// spec resumes it.
	ReasonBudgetExhausted = "BudgetExhausted"
	// ReasonActive: the Campaign is not paused.
	ReasonActive = "Active"
	// ReasonDeleted: the compiled spec was removed from the dispatchers on deletion.
	ReasonDeleted = "Deleted"
	// ReasonBudgetRestored (Event): a budget cap that held no longer does (the budget was
	// raised or a new period began).
	ReasonBudgetRestored = "BudgetRestored"
	// ReasonRunPublished (Event): a scheduled run was published to the dispatchers.
	ReasonRunPublished = "RunPublished"
	// ReasonRunSkipped (Event): a scheduled run came while the Campaign was paused.
	ReasonRunSkipped = "RunSkipped"
	// ReasonRunMissed (Event): a scheduled run was found too late for the missed-run policy.
	ReasonRunMissed = "RunMissed"
	// ReasonConfigMapChanged: a ConfigMap the Campaign's content refers to changed.
	ReasonConfigMapChanged = "ConfigMapChanged"
)

// Finalizer removes the compiled spec from the croupier-config bucket before the object goes.
const Finalizer = "crm.croupier.dev/finalizer"
