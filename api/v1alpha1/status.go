package v1alpha1

// Common returns the status every kind shares.
func (c *Campaign) Common() *CommonStatus { return &c.Status.CommonStatus }

// Common returns the status every kind shares.
func (s *Segment) Common() *CommonStatus { return &s.Status.CommonStatus }

// Common returns the status every kind shares.
func (c *ChannelPolicy) Common() *CommonStatus { return &c.Status.CommonStatus }

// Common returns the status every kind shares.
func (p *PreferencePolicy) Common() *CommonStatus { return &p.Status.CommonStatus }

// IsMandatory says whether a category is mandatory under this policy: the explicit
// setting, or true for service and responsibleGaming.
func (c *CategoryPolicy) IsMandatory() bool {
	if c.Mandatory != nil {
		return *c.Mandatory
	}
	return c.Category != CategoryMarketing
}
