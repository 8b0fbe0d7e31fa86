package shopify

import (
	"context"
	"encoding/json"
	"strconv"
)

type restLevel struct {
	LocationID      int64  `json:"location_id"`
	InventoryItemID int64  `json:"inventory_item_id"`
	Available       int64  `json:"available"`
	UpdatedAt       string `json:"updated_at,omitempty"`
}

// setREST overwrites the level and returns its updated_at.
func (w *Writer) setREST(ctx context.Context, lv *level) (string, error) {
	item, _ := strconv.ParseInt(lv.item, 10, 64)
	loc, _ := strconv.ParseInt(lv.location, 10, 64)
	body, err := w.post(ctx, "inventory_levels/set.json",
		restLevel{LocationID: loc, InventoryItemID: item, Available: lv.available}, "set shopify inventory level")
	if err != nil {
		return "", err
	}
	var resp struct {
		InventoryLevel restLevel `json:"inventory_level"`
	}
	_ = json.Unmarshal(body, &resp) // the level is set; the timestamp is a nicety
	return resp.InventoryLevel.UpdatedAt, nil
}
