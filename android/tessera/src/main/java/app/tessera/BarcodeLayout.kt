package app.tessera

import app.tessera.core.BarcodeMatrix

/**
 * Where each module of a [BarcodeMatrix] goes in a `width` × `height` pixel box: whole pixels per
 * module (a scanner reads sharp edges, not anti-aliased ones), the quiet zone kept, the code centred.
 * Linear codes (one row) are drawn as bars [LINEAR_HEIGHT_RATIO] of their width tall, or the box's
 * height if smaller. Shared by the Android card view; the iOS view does the same arithmetic.
 */
data class BarcodeLayout(
    /** Pixels per module, ≥ 1. */
    val modulePx: Int,
    /** Left and top of the first module (inside the quiet zone). */
    val left: Int,
    val top: Int,
    /** Height of one row of modules in pixels (the bar height of a linear code). */
    val rowPx: Int,
    val columns: Int,
    val rows: Int,
) {
    /** The dark runs of row `row` as (first column, length) pairs: one rectangle each. */
    fun darkRuns(matrix: BarcodeMatrix, row: Int): List<Pair<Int, Int>> {
        val runs = ArrayList<Pair<Int, Int>>()
        var col = 0
        val base = row * columns
        while (col < columns) {
            if (matrix.modules[base + col].toInt() != 0) {
                val start = col
                while (col < columns && matrix.modules[base + col].toInt() != 0) col++
                runs += start to (col - start)
            } else {
                col++
            }
        }
        return runs
    }

    /**
     * Every dark rectangle to paint, as (left, top, right, bottom) in pixels, the layout's box
     * starting at (`originX`, `originY`): one per run of dark modules in a row. The card views
     * paint exactly these on white.
     */
    inline fun forEachDarkRect(matrix: BarcodeMatrix, originX: Int, originY: Int, paint: (Int, Int, Int, Int) -> Unit) {
        for (row in 0 until rows) {
            val top = originY + this.top + row * rowPx
            for ((col, len) in darkRuns(matrix, row)) {
                val left = originX + this.left + col * modulePx
                paint(left, top, left + len * modulePx, top + rowPx)
            }
        }
    }

    companion object {
        /** A linear code's bars are at least this fraction of its width tall (GS1: ~0.7 for EAN-13). */
        const val LINEAR_HEIGHT_RATIO = 0.5

        /**
         * The largest whole-pixel layout of `matrix` in `width` × `height`, or null when even one
         * pixel per module does not fit (the screen is too small for a readable code) or the
         * matrix is malformed.
         */
        fun fit(matrix: BarcodeMatrix, width: Int, height: Int): BarcodeLayout? {
            val columns = matrix.width.toInt()
            val rows = matrix.height.toInt()
            if (columns <= 0 || rows <= 0 || matrix.modules.size != columns * rows) return null
            val quiet = matrix.quietZone.toInt()
            val linear = rows == 1
            val acrossModules = columns + 2 * quiet
            val modulePx = if (linear) {
                width / acrossModules
            } else {
                minOf(width / acrossModules, height / (rows + 2 * quiet))
            }
            if (modulePx < 1) return null
            val codeWidth = columns * modulePx
            val rowPx: Int
            val codeHeight: Int
            if (linear) {
                rowPx = minOf(height, maxOf(1, (codeWidth * LINEAR_HEIGHT_RATIO).toInt()))
                codeHeight = rowPx
            } else {
                rowPx = modulePx
                codeHeight = rows * modulePx
            }
            return BarcodeLayout(
                modulePx = modulePx,
                left = (width - codeWidth) / 2,
                top = (height - codeHeight) / 2,
                rowPx = rowPx,
                columns = columns,
                rows = rows,
            )
        }
    }
}
