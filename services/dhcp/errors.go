package dhcp

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrOtherServer means another DHCP server answered on the segment, so this
// one did not start. Two servers on one segment hand out conflicting
// addresses; the condition lasts until someone turns one of them off, so
// appliance should show the message and retry only slowly.
var ErrOtherServer = errors.New("another DHCP server answers on the segment")

// OtherServerError is the ErrOtherServer that Serve returns. Error returns
// the French text; English the English one.
type OtherServerError struct {
	Interface string
	// Server is the other server's identifier (option 54), or the source
	// address of its offer when it sent none.
	Server netip.Addr
	FR, EN string
}

func newOtherServerError(iface string, server netip.Addr) *OtherServerError {
	return &OtherServerError{
		Interface: iface,
		Server:    server,
		FR: fmt.Sprintf("un autre serveur DHCP (%s) répond déjà sur %s : le serveur DHCP de Préau ne démarre pas. "+
			"Désactivez l'autre serveur (souvent la box Internet ou le routeur de l'école) ou laissez le DHCP de Préau désactivé", server, iface),
		EN: fmt.Sprintf("another DHCP server (%s) already answers on %s: Préau's DHCP server does not start. "+
			"Turn the other server off (often the internet box or the school's router) or leave Préau's DHCP off", server, iface),
	}
}

func (e *OtherServerError) Error() string   { return e.FR }
func (e *OtherServerError) English() string { return e.EN }
func (e *OtherServerError) Unwrap() error   { return ErrOtherServer }
