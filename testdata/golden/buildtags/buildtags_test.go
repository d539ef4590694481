package buildtags

// InTest is in a test file and is not scanned.
//
//purgatory:circuit
type InTest interface {
	Run() error
}
